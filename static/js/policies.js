// The policy pages (a file, no inline script: CSP). A form answered 422 is swapped in place by
// base.html's htmx-config for every page. Here: each policy item's fields show only while the item is on; the update window only for a
//    windowed policy; the explicit shell list only when not taking the console's; the
//    assignment's target fields for the chosen kind.
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
