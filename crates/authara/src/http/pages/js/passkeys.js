// Passkeys (WebAuthn) on the hosted pages. Hooks (behavior.md §13):
//   [data-passkey-register]            adds a passkey; with data-passkey-redirect="true" it goes on
//                                      to data-return-to afterwards, else it swaps in the
//                                      #linked-providers-section the server returns.
//   [data-passkey-login]               signs in with a passkey (modal browser prompt).
//   [data-passkey-conditional-login]   also offers passkeys in the email field's autofill where the
//                                      browser supports conditional mediation.
//   [data-passkey-error]               where failures are shown.
// Everything starts hidden and is shown only where WebAuthn exists: without it (or without
// JavaScript) the pages offer what they offered before.

/** base64url (no padding) → ArrayBuffer. */
function autharaB64uToBuf(s) {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

/** ArrayBuffer → base64url without padding. */
function autharaBufToB64u(buf) {
  const bytes = new Uint8Array(buf);
  let bin = "";
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function autharaPasskeysSupported() {
  return typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
}

function autharaPasskeyError(scope, message) {
  const box = (scope && scope.querySelector("[data-passkey-error]")) || document.querySelector("[data-passkey-error]");
  if (!box) return;
  box.textContent = message || "";
  box.hidden = !message;
}

/** The server's message from an error envelope, or a generic one. */
async function autharaPasskeyMessage(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON */ }
  return "Something went wrong. Please try again.";
}

function autharaCreationOptions(options) {
  const pk = Object.assign({}, options.publicKey);
  pk.challenge = autharaB64uToBuf(pk.challenge);
  pk.user = Object.assign({}, pk.user, { id: autharaB64uToBuf(pk.user.id) });
  pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => Object.assign({}, c, { id: autharaB64uToBuf(c.id) }));
  return pk;
}

function autharaRequestOptions(options) {
  const pk = Object.assign({}, options.publicKey);
  pk.challenge = autharaB64uToBuf(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => Object.assign({}, c, { id: autharaB64uToBuf(c.id) }));
  return pk;
}

function autharaCredentialJSON(cred) {
  const r = cred.response;
  const response = { clientDataJSON: autharaBufToB64u(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = autharaBufToB64u(r.attestationObject);
    response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
  } else {
    response.authenticatorData = autharaBufToB64u(r.authenticatorData);
    response.signature = autharaBufToB64u(r.signature);
    response.userHandle = r.userHandle ? autharaBufToB64u(r.userHandle) : null;
  }
  return {
    id: cred.id,
    rawId: autharaBufToB64u(cred.rawId),
    type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment || null,
    clientExtensionResults: typeof cred.getClientExtensionResults === "function" ? cred.getClientExtensionResults() : {},
    response: response,
  };
}

function autharaPasskeyPost(url, body, extraHeaders) {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    redirect: "manual",
    headers: Object.assign({
      "Content-Type": "application/json",
      "Accept": "application/json",
      "X-CSRF-Token": autharaCsrfToken(),
    }, extraHeaders || {}),
    body: JSON.stringify(body || {}),
  });
}

/** A browser prompt the user dismissed is not an error worth showing. */
function autharaPasskeyCancelled(e) {
  return e && (e.name === "NotAllowedError" || e.name === "AbortError");
}

async function autharaPasskeyRegister(button) {
  const scope = button.closest("section, .card") || document;
  autharaPasskeyError(scope, "");
  button.disabled = true;
  try {
    const start = await autharaPasskeyPost("/auth/passkeys/register/options", {});
    if (!start.ok) return autharaPasskeyError(scope, await autharaPasskeyMessage(start));
    const { challenge_id, options } = await start.json();
    let cred;
    try {
      cred = await navigator.credentials.create({ publicKey: autharaCreationOptions(options) });
    } catch (e) {
      if (!autharaPasskeyCancelled(e)) autharaPasskeyError(scope, "Your device could not create a passkey.");
      return;
    }
    const redirect = button.dataset.passkeyRedirect === "true";
    const hint = navigator.userAgentData && navigator.userAgentData.platform ? navigator.userAgentData.platform : undefined;
    const body = { challenge_id, credential: autharaCredentialJSON(cred), platform_hint: hint, return_to: button.dataset.returnTo };
    const headers = redirect ? {} : { "X-Authara-Response": "linked-providers-section" };
    const res = await autharaPasskeyPost("/auth/passkeys/register/finish", body, headers);
    if (!res.ok) return autharaPasskeyError(scope, await autharaPasskeyMessage(res));
    if (redirect) {
      const done = await res.json();
      window.location.assign(done.return_to || "/auth/account");
      return;
    }
    const section = document.getElementById("linked-providers-section");
    if (section) {
      section.outerHTML = await res.text();
      autharaPasskeysBind(document.getElementById("linked-providers-section"));
    }
  } catch (_) {
    autharaPasskeyError(scope, "Something went wrong. Please try again.");
  } finally {
    button.disabled = false;
  }
}

let autharaConditionalLogin = null;

/** One sign-in ceremony: modal (a button) or conditional (autofill, aborted by the button). */
async function autharaPasskeyLogin(returnTo, conditional) {
  const start = await autharaPasskeyPost("/auth/passkeys/authenticate/options", {});
  if (!start.ok) return autharaPasskeyMessage(start);
  const { challenge_id, options } = await start.json();
  const request = { publicKey: autharaRequestOptions(options) };
  if (conditional) {
    autharaConditionalLogin = new AbortController();
    request.mediation = "conditional";
    request.signal = autharaConditionalLogin.signal;
  }
  let cred;
  try {
    cred = await navigator.credentials.get(request);
  } catch (e) {
    return autharaPasskeyCancelled(e) ? null : "Your device could not use a passkey.";
  }
  if (!cred) return null;
  const res = await autharaPasskeyPost("/auth/passkeys/authenticate/finish",
    { challenge_id, credential: autharaCredentialJSON(cred), return_to: returnTo });
  if (!res.ok) return autharaPasskeyMessage(res);
  const done = await res.json();
  window.location.assign(done.return_to || "/");
  return null;
}

async function autharaPasskeyLoginClick(button) {
  const scope = button.closest("[data-passkey-conditional-login]") || document;
  autharaPasskeyError(scope, "");
  if (autharaConditionalLogin) {
    autharaConditionalLogin.abort();
    autharaConditionalLogin = null;
  }
  button.disabled = true;
  try {
    const failure = await autharaPasskeyLogin(button.dataset.returnTo, false);
    if (failure) autharaPasskeyError(scope, failure);
  } catch (_) {
    autharaPasskeyError(scope, "Something went wrong. Please try again.");
  } finally {
    button.disabled = false;
  }
}

async function autharaStartConditional(block) {
  const available = window.PublicKeyCredential && typeof PublicKeyCredential.isConditionalMediationAvailable === "function"
    && await PublicKeyCredential.isConditionalMediationAvailable();
  if (!available) return;
  const email = document.querySelector('[data-login-form] input[name="email"]');
  if (!email) return;
  email.setAttribute("autocomplete", "username webauthn");
  const button = block.querySelector("[data-passkey-login]");
  // Autofill is a convenience that runs unasked: its failures are not shown (the button, which
  // the user presses, reports its own).
  try {
    await autharaPasskeyLogin(button ? button.dataset.returnTo : undefined, true);
  } catch (_) { /* the button remains */ }
}

function autharaPasskeysBind(root) {
  if (!root || !autharaPasskeysSupported()) return;
  root.querySelectorAll("[data-passkey-register]").forEach((b) => {
    b.hidden = false;
    b.addEventListener("click", () => autharaPasskeyRegister(b));
  });
  root.querySelectorAll("[data-passkey-login]").forEach((b) => {
    b.addEventListener("click", () => autharaPasskeyLoginClick(b));
  });
  root.querySelectorAll("[data-passkey-conditional-login]").forEach((block) => {
    block.hidden = false;
    autharaStartConditional(block);
  });
}

document.addEventListener("DOMContentLoaded", () => autharaPasskeysBind(document));
