// The Enrollment page (a file, not inline: CSP): copy the key shown once, hand it to the QR
// builder and the one-liner (a form's 422 answer is swapped in place by base.html's htmx-config).

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a LAN is not a secure context: no Clipboard API there.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.append(area);
  area.select();
  const done = document.execCommand("copy");
  area.remove();
  if (!done) throw new Error("copy refused");
}

function say(button, text) {
  const feedback = button.parentElement.querySelector("[data-feedback]");
  if (feedback) feedback.textContent = text;
}

document.addEventListener("click", async (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const text = document.getElementById(copy.dataset.copy).textContent.trim();
    try {
      await copyText(text);
      say(copy, "Copied.");
    } catch {
      say(copy, "The browser refused: select the key and copy it.");
    }
    return;
  }
  const use = event.target.closest("[data-use-key]");
  if (use) {
    const key = document.getElementById(use.dataset.useKey).textContent.trim();
    const fields = document.querySelectorAll("#qr-builder [name=enroll_key], #oneliner [name=enroll_key]");
    fields.forEach((field) => {
      field.value = key;
      // What typing does: the field's hx-trigger asks the server which key it is.
      field.dispatchEvent(new Event("input", { bubbles: true }));
    });
    say(use, fields.length ? "Filled in below." : "No QR builder or one-liner on this page.");
    document.getElementById("qr")?.scrollIntoView({ block: "start" });
  }
});
