// Keyboard and screen-reader support around htmx swaps (issue 16). A static file because the
// CSP allows no inline script.
// - A swap that removes the element holding the focus (an Edit link replaced by its editor, a
//   confirm button by the action's result) would drop the focus to <body>, and a keyboard user
//   would start again at the top of the page: the focus moves into the new content instead (its
//   first invalid field, else its message, else its first control).
// - A field's message element swapped in by live validation marks the field invalid or valid.
// - A page that comes back with field errors starts at the first invalid field.
"use strict";

const CONTROLS = "a[href], button:not([disabled]), select:not([disabled]), textarea:not([disabled])," +
  " input:not([type=hidden]):not([disabled])";
let focusInSwap = false;

function within(content, selector) {
  return content.matches(selector) ? content : content.querySelector(selector);
}

function focusInto(content) {
  const place = within(content, '[aria-invalid="true"]')
    || within(content, '[role="alert"], [role="status"]')
    || within(content, CONTROLS)
    || content;
  if (!place.matches(CONTROLS)) place.setAttribute("tabindex", "-1"); // focusable, not tabbable
  place.focus();
}

function markField(message) {
  if (!message.id || !message.classList.contains("field-error")) return;
  for (const field of document.querySelectorAll(`[aria-describedby~="${message.id}"]`)) {
    if (message.textContent.trim()) field.setAttribute("aria-invalid", "true");
    else field.removeAttribute("aria-invalid");
  }
}

document.addEventListener("htmx:beforeSwap", (event) => {
  const active = document.activeElement;
  focusInSwap = active !== null && active !== document.body
    && Boolean(event.detail.target?.contains(active));
});

document.addEventListener("htmx:afterSwap", (event) => {
  if (!(event.target instanceof Element)) return; // htmx also signals the text between elements
  markField(event.target);
  const active = document.activeElement;
  const lost = focusInSwap && (active === null || active === document.body);
  focusInSwap = false;
  if (!lost) return;
  if (event.target === document.body) { // a boosted link: a new page, read from its heading
    const main = document.getElementById("main");
    const heading = main.querySelector("h1") || main;
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  } else {
    focusInto(event.target);
  }
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelector('main [aria-invalid="true"]')?.focus();
});
