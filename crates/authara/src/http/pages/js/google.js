// Google Identity Services glue (behavior.md §7.2, §13). Pages with Google embed GIS with
// `#g_id_onload[data-nonce]` and `data-callback="autharaGoogleCallback"`, and one
// `[data-google-flow]` element (`login`, `link` or `proof`, with `data-provider`,
// `data-link-id`, `data-return-to`). GIS hands us an ID token; we post it to
// `/auth/oauth/google/callback` and go where the server says (`X-Authara-Redirect`). A
// redirect instead (an error, with a flash message) lands on the login or account page.
(function () {
  "use strict";

  function sameSite(path) {
    return typeof path === "string" && path.startsWith("/") && !path.startsWith("//") && !path.startsWith("/\\");
  }

  async function handle(response) {
    const onload = document.getElementById("g_id_onload");
    const el = document.querySelector("[data-google-flow]");
    if (!onload || !el || !response || !response.credential) return;
    const flow = el.dataset.googleFlow || "login";
    const returnTo = el.dataset.returnTo || "";
    const qs = returnTo ? "?return_to=" + encodeURIComponent(returnTo) : "";
    let linkId = el.dataset.linkId || "";
    if (flow === "link" && !linkId) {
      const provider = encodeURIComponent(el.dataset.provider || "google");
      const started = await autharaPostJson("/auth/providers/" + provider + "/link/start", {});
      if (!started.ok) {
        window.location.assign("/auth/account");
        return;
      }
      linkId = (await started.json()).link_id || "";
    }
    const body = new URLSearchParams({
      credential: response.credential,
      nonce: onload.dataset.nonce || "",
      flow: flow,
      link_id: linkId,
    });
    const res = await fetch("/auth/oauth/google/callback" + qs, {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": autharaCsrfToken() },
      body: body,
    });
    const next = res.headers.get("X-Authara-Redirect");
    if (res.ok && sameSite(next)) {
      window.location.assign(next);
      return;
    }
    window.location.assign(flow === "link" ? "/auth/account" : "/auth/login" + qs);
  }

  window.autharaGoogleCallback = function (response) {
    handle(response).catch(function () {
      window.location.reload();
    });
  };
})();
