// The header's basket count follows the "basket-changed" event that adding to the basket and
// the basket page send in their HX-Trigger header: the count comes with the answer, so there
// is no second request for it. A static file because the CSP allows no inline script.
"use strict";

document.addEventListener("basket-changed", (event) => {
  const count = document.getElementById("basket-count");
  if (count && Number.isInteger(event.detail?.count)) count.textContent = String(event.detail.count);
});
