// Admin tables: Escape cancels an inline edit, and a header box ticks every row.
// A static file because the CSP allows no inline script and htmx runs with allowEval off
// (so trigger filters such as keyup[key=='Escape'] are not available).
"use strict";

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !(event.target instanceof Element)) return;
  const editor = event.target.closest(".row-editor");
  const cancel = editor && editor.querySelector(".cancel");
  if (cancel) {
    event.preventDefault();
    cancel.click();
  }
});

document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.classList.contains("select-all")) return;
  const table = box.closest("table");
  for (const row of table.querySelectorAll('input[name="ids"]')) row.checked = box.checked;
});
