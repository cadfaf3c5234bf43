// Keeps this browser's lab token in a first-party cookie (see ui/token.py).
// Streamlit's components v2 call this with the mount's `data`; it only writes the
// cookie, so the server reads the token back from the next connection's request
// (st.context.cookies). Never in the address bar, sent to this site only.
export default function ({ data }) {
  if (!data || !/^[A-Za-z0-9_-]{32,128}$/.test(data.token) || !/^[a-z_]+$/.test(data.name)) {
    return;
  }
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${data.name}=${data.token}; Max-Age=${Math.floor(data.maxAge)}; Path=/; SameSite=Strict${secure}`;
}
