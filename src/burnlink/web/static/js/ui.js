// Small DOM helpers shared by the pages: showing and hiding, copy buttons with feedback, and
// reading the page's id and #fragment. User-derived strings only ever go in through
// textContent or form values, never as HTML.

import { t } from "./i18n.js";

const COPIED_MS = 2000;

/** The element with this id (the templates guarantee it exists). */
export function byId(id) {
  return document.getElementById(id);
}

/** Show or hide an element. */
export function show(element, visible = true) {
  element.hidden = !visible;
}

/** Set an element's text (never HTML). */
export function setText(element, text) {
  element.textContent = text;
}

/**
 * Append a table cell holding `text` (as text) to `row`. `heading`: the column's name, which a
 * phone's stacked rows show before the value (`data-label`).
 */
export function addCell(row, text, heading = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (heading) td.dataset.label = heading;
  row.append(td);
  return td;
}

/** Show `message` in an error box (or hide the box when `message` is empty). */
export function setError(element, message) {
  element.textContent = message ?? "";
  element.hidden = !message;
}

/** The secret id: the last segment of the page's path (`/s/{id}`, `/m/{id}`). */
export function pageId() {
  const parts = location.pathname.split("/").filter(Boolean);
  return decodeURIComponent(parts[parts.length - 1] ?? "");
}

/** The page's #fragment without the "#" (the key or manage token; never sent anywhere). */
export function fragment() {
  return location.hash.replace(/^#/, "").trim();
}

function politeRegion() {
  let region = byId("announce");
  if (region === null) {
    region = document.createElement("p");
    region.id = "announce";
    region.className = "visually-hidden";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    document.body.append(region);
  }
  return region;
}

/** Say `message` to screen readers without moving focus. */
export function announce(message) {
  const region = politeRegion();
  region.textContent = "";
  // A fresh text node after a tick, so the same message twice is announced twice.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

async function writeClipboard(source) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(source.value);
      return true;
    } catch {
      // Fall through to the selection (permission refused, document not focused, …).
    }
  }
  source.focus();
  source.select();
  try {
    return document.execCommand("copy");
  } catch {
    return false;
  }
}

/** Wire every `button[data-copy-from]` under `root` to copy its field's value, with feedback. */
export function setupCopyButtons(root = document) {
  for (const button of root.querySelectorAll("button[data-copy-from]")) {
    const label = button.textContent;
    let timer = null;
    button.addEventListener("click", async () => {
      const source = byId(button.dataset.copyFrom);
      const copied = await writeClipboard(source);
      clearTimeout(timer);
      button.textContent = copied ? t("copy.done") : label;
      button.classList.toggle("copied", copied);
      announce(copied ? t("copy.done") : t("copy.failed"));
      if (!copied) {
        source.focus();
        source.select();
      }
      timer = setTimeout(() => {
        button.textContent = label;
        button.classList.remove("copied");
      }, COPIED_MS);
    });
  }
}

/** Disable a button while `work` runs, and mark `busy` (a form or section) as busy. */
export async function whileBusy(button, busy, work) {
  button.disabled = true;
  busy.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    busy.removeAttribute("aria-busy");
  }
}

/**
 * Report a page that could not start (its messages did not load, for example). The text is
 * English on purpose: the catalogue may be what failed.
 */
export function failed(error) {
  document.documentElement.dataset.ready = "error";
  const status = document.querySelector("[role=status]");
  if (status !== null) {
    status.textContent = `This page could not start (${error?.message ?? error}). Reload it to try again.`;
  }
  throw error;
}
