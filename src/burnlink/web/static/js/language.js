// The language picker in every page's header: choosing a language remembers it in this
// browser (the burnlink_lang cookie, which the server reads to render the first paint in it)
// and loads the page again in that language, keeping the #fragment (a link's key).
//
// A page that holds something a reload would lose (a revealed secret, a new link, a half-typed
// secret) calls holdLanguage(): the picker is then disabled, with the reason as its title.

const YEAR_SECONDS = 365 * 86400;

let held = false;

/** The picker's <select> (every page's header has one). */
function picker() {
  return document.getElementById("language-picker");
}

/**
 * Keep the page in its language while it holds what a reload would lose; `reason` (already in
 * the page's language) tells the reader why the picker is disabled. `null` lets go again.
 */
export function holdLanguage(reason) {
  held = reason !== null;
  const select = picker();
  if (select === null) return;
  select.disabled = held;
  if (held) select.title = reason;
  else select.removeAttribute("title");
}

/** Remember `tag` in this browser for a year; false when cookies are refused. */
function remember(tag) {
  const select = picker();
  const name = select?.dataset.cookie || "burnlink_lang";
  const secure = location.protocol === "https:" ? "; secure" : "";
  document.cookie = `${name}=${encodeURIComponent(tag)}; path=/; max-age=${YEAR_SECONDS}; samesite=lax${secure}`;
  return document.cookie.split("; ").includes(`${name}=${encodeURIComponent(tag)}`);
}

/** Load this page again in `tag`: by the cookie, or by ?lang= when cookies are refused. */
function switchTo(tag) {
  const url = new URL(location.href);
  const query = picker()?.name || "lang";
  if (remember(tag)) url.searchParams.delete(query);
  else url.searchParams.set(query, tag);
  // Same URL but for the fragment would only scroll: reload instead.
  if (url.href === location.href) location.reload();
  else location.assign(url.href);
}

function wire() {
  const select = picker();
  if (select === null) return;
  const current = document.documentElement.lang;
  select.addEventListener("change", () => {
    if (held || select.value === current) return;
    select.disabled = true;
    switchTo(select.value);
  });
  // The form only serves pages without scripts; here the change event does it all.
  select.form?.addEventListener("submit", (event) => event.preventDefault());
}

wire();
