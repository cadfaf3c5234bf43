from streamlit.testing.v1 import AppTest

from ui.text import plain


def test_plain_neutralises_markdown_links_latex_and_html():
    raw = "[click](http://x.y) **bold** $\\href{a}{b}$ <b>x</b> `c`"
    s = plain(raw)
    # every special character is preceded by a backslash, and removing them gives the text back
    for i, ch in enumerate(s):
        if ch in "[]()*$<>`{}" and (i == 0 or s[i - 1] != "\\"):
            raise AssertionError(f"unescaped {ch!r} at {i} in {s!r}")
    import re
    assert re.sub(r"\\(.)", r"\1", s) == raw


def test_user_text_shows_literally_on_screen():
    def app():
        import streamlit as st
        from ui.text import plain
        st.error(plain("evil_[file](http://x.y)_*name*.csv: $x$"))

    at = AppTest.from_function(app).run()
    shown = at.error[0].value
    # the markdown source escapes every special character, so it renders as typed
    assert "\\[file\\]\\(http" in shown and "\\$x\\$" in shown and "\\*name\\*" in shown


def test_count_says_one_thing_in_the_singular():
    from ui.text import count
    assert [count(n, "step") for n in (0, 1, 2, 2000)] == ["0 steps", "1 step", "2 steps", "2,000 steps"]
