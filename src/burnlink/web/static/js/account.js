// Who is signed in, on the compose page (only when the server has sign-in configured): the
// user's name, a link to "My secrets" (/me) and a sign-out button, or the "Sign in" link the
// template already shows. Once signed in, the page's own requests carry the session cookie and
// its CSRF token.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { byId, setError, setText, show } from "./ui.js";

/** Show the account area; returns the signed-in user, or null. Never throws. */
export async function setupAccount() {
  const area = byId("account");
  if (area === null) return null;
  let user = null;
  try {
    user = await api.me();
  } catch {
    user = null; // Anonymous (401), or the server cannot say: the "Sign in" link stays.
  }
  if (user === null) return null;
  api.useSession(user.csrf_token);
  setText(byId("signed-in"), t("signin.signed_in_as", { name: user.email ?? user.subject }));
  show(byId("sign-in"), false);
  show(byId("signed-in"), true);
  show(byId("my-secrets-link"), true);
  const button = byId("sign-out");
  show(button, true);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      location.assign(await api.signOut());
    } catch {
      button.disabled = false;
      setError(byId("account-error"), t("signin.error_sign_out"));
    }
  });
  return user;
}
