// Devices list: "select all" for bulk actions (the rows are re-rendered by htmx, so delegate).
document.addEventListener("change", (event) => {
  if (event.target.id === "select-all") {
    document.querySelectorAll('input[name="device_ids"]').forEach((box) => { box.checked = event.target.checked; });
  }
  if (event.target.name === "device_ids" || event.target.id === "select-all") {
    const n = document.querySelectorAll('input[name="device_ids"]:checked').length;
    const button = document.getElementById("bulk-delete");
    if (button) { button.disabled = n === 0; button.textContent = n ? `Delete ${n} selected` : "Delete selected"; }
  }
});
document.addEventListener("htmx:afterSwap", () => {
  const button = document.getElementById("bulk-delete");
  if (button) button.disabled = !document.querySelector('input[name="device_ids"]:checked');
});
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("bulk-delete");
  if (button) button.disabled = true;
});
