// The policy pages (was no inline script: CSP). Two behaviours:
// 1. A form answered 422 (validation errors) is swapped in place: htmx 2 does not swap 4xx
//    answers by default, and the base layout does not configure it, so forms and areas that
//    opt in with data-swap-422 get their answer swapped (the errors beside the fields).
// 2. Each policy item's fields show only while the item is on; the update window only for a
//    windowed policy; the explicit shell list only when not taking the console's; the
//    assignment's target fields for the chosen kind.
document.body.addEventListener("htmx:beforeSwap", (event) => {
  const elt = event.detail.elt;
  if (event.detail.xhr.status === 422 && elt instanceof Element && elt.closest("[data-swap-422]")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

function syncPolicyForms() {
  document.querySelectorAll("[data-item-toggle]").forEach((box) => {
    const fields = document.querySelector(`[data-item-fields="${box.value}"]`);
    if (fields) fields.hidden = !box.checked;
  });
  const type = document.querySelector("[data-update-type]");
  document.querySelectorAll("[data-window]").forEach((el) => { el.hidden = !type || type.value !== "windowed"; });
  const mode = document.querySelector("[data-shell-mode]:checked");
  document.querySelectorAll("[data-shell-lines]").forEach((el) => { el.hidden = !!mode && mode.value === "console"; });
  const assign = document.getElementById("assign-form");
  if (assign) {
    const kind = assign.querySelector("input[name=target_kind]:checked")?.value;
    assign.querySelectorAll("[data-show]").forEach((el) => { el.hidden = el.dataset.show !== `target=${kind}`; });
  }
}
document.addEventListener("DOMContentLoaded", syncPolicyForms);
document.addEventListener("change", syncPolicyForms);
document.body.addEventListener("htmx:load", syncPolicyForms);
