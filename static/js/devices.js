// Devices list: the bulk bar's selection (ticked rows, or "all that match the filter") and the
// device page's command history refreshing with its live status. The table is re-rendered by
// htmx, so everything is delegated from the document.
const boxes = () => document.querySelectorAll('input[name="device_ids"]');
const ticked = () => document.querySelectorAll('input[name="device_ids"]:checked');

function syncBulkBar() {
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const all = document.getElementById("all-matching");
  const matching = all && all.value === "1";
  const total = Number(document.getElementById("match-count").dataset.count);
  const n = matching ? total : ticked().length;
  document.getElementById("bulk-count").textContent =
    n === 0 ? "No device selected" : matching ? `All ${n} matching devices selected` : `${n} selected`;
  form.querySelectorAll("[data-bulk]").forEach((button) => { button.disabled = n === 0; });
  const selectAll = document.getElementById("select-all");
  const onPage = boxes().length;
  if (selectAll) selectAll.checked = onPage > 0 && ticked().length === onPage;
  const more = document.getElementById("select-matching");
  if (more) more.hidden = matching || !selectAll || !selectAll.checked;
  const remove = document.getElementById("bulk-delete");
  if (remove) {
    remove.setAttribute("hx-confirm", `Delete ${n} device${n === 1 ? "" : "s"}? Their tokens stop working at once and their hardware ids are retired.`);
  }
}

document.addEventListener("change", (event) => {
  const all = document.getElementById("all-matching");
  if (event.target.id === "select-all") {
    boxes().forEach((box) => { box.checked = event.target.checked; });
    if (all && !event.target.checked) all.value = "";
  }
  if (event.target.name === "device_ids" && !event.target.checked && all) all.value = "";
  if (event.target.name === "device_ids" || event.target.id === "select-all") syncBulkBar();
});

document.addEventListener("click", (event) => {
  if (event.target.id !== "select-matching") return;
  document.getElementById("all-matching").value = "1";
  boxes().forEach((box) => { box.checked = true; });
  syncBulkBar();
});

document.addEventListener("htmx:beforeRequest", (event) => {
  if (!event.target.closest || !event.target.closest("#bulk-form")) return;
  document.getElementById("bulk-message").textContent = "";
  document.querySelector("#bulk-form .bulk-notice")?.remove();
});

// The device page: its command history re-reads itself when the live status arrives, while a
// command it shows is still under way (results come back with the device's heartbeats).
document.addEventListener("htmx:wsAfterMessage", () => {
  const history = document.getElementById("device-commands");
  if (history && history.dataset.pending === "true") htmx.trigger(history, "refresh");
});

document.addEventListener("htmx:afterSwap", syncBulkBar);
document.addEventListener("DOMContentLoaded", syncBulkBar);
