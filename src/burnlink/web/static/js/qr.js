// A QR code of a link, drawn in the page as SVG (the link, which holds the key, never leaves
// the browser). Uses the vendored qrcode-generator 2.0.4 (MIT; see docs/web.md).

import qrcode from "../vendor/qrcode-generator-2.0.4.js";

const SVG = "http://www.w3.org/2000/svg";
const QUIET_ZONE = 4;

function utf8Binary(text) {
  // qrcode-generator's byte mode takes one character per byte.
  return String.fromCharCode(...new TextEncoder().encode(text));
}

/**
 * An `<svg>` element with the QR code of `text` (error correction M), dark on light whatever
 * the colour scheme so that phones can read it. Throws when `text` is too long for a QR code.
 */
export function qrSvg(text, label) {
  const code = qrcode(0, "M");
  code.addData(utf8Binary(text), "Byte");
  code.make();
  const count = code.getModuleCount();
  const size = count + 2 * QUIET_ZONE;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("shape-rendering", "crispEdges");
  const background = document.createElementNS(SVG, "rect");
  background.setAttribute("width", String(size));
  background.setAttribute("height", String(size));
  background.setAttribute("fill", "#ffffff");
  const path = document.createElementNS(SVG, "path");
  let d = "";
  for (let row = 0; row < count; row += 1) {
    for (let col = 0; col < count; col += 1) {
      if (code.isDark(row, col)) d += `M${col + QUIET_ZONE} ${row + QUIET_ZONE}h1v1h-1z`;
    }
  }
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000000");
  svg.append(background, path);
  return svg;
}
