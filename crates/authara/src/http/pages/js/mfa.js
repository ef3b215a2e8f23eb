// Two-step verification: the recovery codes' Copy button (the page works without it: the
// codes are on the page, and Download is a plain link).
document.querySelectorAll("[data-copy-codes]").forEach((button) => {
  const list = document.querySelector("[data-recovery-codes]");
  if (!list || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const codes = Array.from(list.querySelectorAll("code"), (c) => c.textContent.trim());
    try {
      await navigator.clipboard.writeText(codes.join("\n") + "\n");
      button.textContent = "Copied";
    } catch (_) {
      button.textContent = "Copy failed: select the codes instead";
    }
  });
});
