// The command composer: show the fields of the chosen source and target (was inline: CSP).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("composer");
  if (!form) return;
  const sync = () => {
    const source = form.querySelector("input[name=source]:checked").value;
    const target = form.querySelector("input[name=target_kind]:checked").value;
    form.querySelectorAll("[data-show]").forEach((el) => {
      const [key, value] = el.dataset.show.split("=");
      el.hidden = (key === "source" ? source : target) !== value;
    });
  };
  form.addEventListener("change", sync);
  sync();
});
