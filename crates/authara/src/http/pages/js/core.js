// authara page script: one static file, served under a content hash, loaded with `defer` by
// every hosted page (no inline script anywhere: the CSP allows only `script-src 'self'`).
// Each feature lives in its own source file under src/http/pages/js/ and is concatenated into
// this one asset, after this shared part.
"use strict";

/** The CSRF token the page embeds as the hidden input `csrf_token` (double-submit cookie). */
function autharaCsrfToken() {
  const input = document.querySelector('input[name="csrf_token"]');
  return input ? input.value : "";
}

/** POSTs JSON with the CSRF header; resolves to the fetch Response (redirects not followed). */
function autharaPostJson(url, body) {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    redirect: "manual",
    headers: {
      "Content-Type": "application/json",
      "Accept": "application/json",
      "X-CSRF-Token": autharaCsrfToken(),
    },
    body: JSON.stringify(body || {}),
  });
}
