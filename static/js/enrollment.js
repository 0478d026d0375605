// The Enrollment page (a file, not inline: CSP): copy the key shown once, hand it to the QR
// builder and the one-liner, and show a form's 422 answer in place.

// htmx 2 swaps no 4xx answer by default, and base.html does not configure it. A form (or the
// area it swaps) marked data-swap-422 gets its 422 (the form again, with its errors beside the
// fields) swapped like a 200. The same opt-in attribute as the policy pages' script: moved to
// console.js, or replaced by htmx's responseHandling in base.html's htmx-config, it serves every
// form. (detail.elt is the swap's target; the element that made the request is requestConfig.elt.)
document.body.addEventListener("htmx:beforeSwap", (event) => {
  const marked = [event.detail.requestConfig?.elt, event.detail.elt].some((el) => el instanceof Element && el.closest("[data-swap-422]"));
  if (event.detail.xhr.status === 422 && marked) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

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
