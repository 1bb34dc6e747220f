/**
 * The pages' one script (served from this server; the CSP allows no inline script): passkeys, which only a script can
 * use. A form marked `data-passkey` is shown (it is `hidden` without JavaScript) and, on submit, asks the browser for
 * the passkey, fills in its hidden `response` (and `challengeId`) fields and posts the form as usual; the server does
 * the rest. `sign-in` and `reauth` forms fetch their options from `data-options-url` (the API's
 * `POST /passkeys/login/options`); a `register` form carries them in `data-options`. A link marked `data-follow` (the
 * step on to a provider) is followed at once. About 3 KB; no library.
 */
export const clientScript = `"use strict";
(() => {
  const decode = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4)), (c) => c.charCodeAt(0)).buffer;
  const encode = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const descriptor = (d) => ({ ...d, id: decode(d.id) });
  const requestOptions = (o) => ({ ...o, challenge: decode(o.challenge), allowCredentials: (o.allowCredentials || []).map(descriptor) });
  const creationOptions = (o) => ({
    ...o,
    challenge: decode(o.challenge),
    user: { ...o.user, id: decode(o.user.id) },
    excludeCredentials: (o.excludeCredentials || []).map(descriptor),
  });
  const common = (c) => ({
    id: c.id,
    rawId: encode(c.rawId),
    type: c.type,
    authenticatorAttachment: c.authenticatorAttachment || undefined,
    clientExtensionResults: c.getClientExtensionResults(),
  });
  const assertion = (c) => ({
    ...common(c),
    response: {
      clientDataJSON: encode(c.response.clientDataJSON),
      authenticatorData: encode(c.response.authenticatorData),
      signature: encode(c.response.signature),
      userHandle: c.response.userHandle ? encode(c.response.userHandle) : undefined,
    },
  });
  const attestation = (c) => ({
    ...common(c),
    response: {
      clientDataJSON: encode(c.response.clientDataJSON),
      attestationObject: encode(c.response.attestationObject),
      transports: c.response.getTransports ? c.response.getTransports() : undefined,
    },
  });
  const set = (form, name, value) => {
    const input = form.querySelector('input[name="' + name + '"]');
    if (input) input.value = value;
  };
  const follow = document.querySelector("a[data-follow]");
  if (follow) location.assign(follow.href);
  for (const form of document.querySelectorAll("form[data-passkey]")) {
    form.hidden = false;
    const error = form.querySelector("[data-passkey-error]");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (error) error.hidden = true;
      try {
        if (!window.PublicKeyCredential) throw new Error("This browser cannot use passkeys.");
        if (form.dataset.passkey === "register") {
          const credential = await navigator.credentials.create({ publicKey: creationOptions(JSON.parse(form.dataset.options)) });
          set(form, "response", JSON.stringify(attestation(credential)));
        } else {
          const answer = await fetch(form.dataset.optionsUrl, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: "{}",
            credentials: "same-origin",
          });
          const body = await answer.json();
          if (!answer.ok) throw new Error(body.message || "The passkey could not be started.");
          const credential = await navigator.credentials.get({ publicKey: requestOptions(body.options) });
          set(form, "challengeId", body.challengeId);
          set(form, "response", JSON.stringify(assertion(credential)));
        }
        form.submit();
      } catch (e) {
        if (!error) return;
        error.textContent = e && e.name === "NotAllowedError" ? "No passkey was used (cancelled or timed out)." : (e && e.message) || String(e);
        error.hidden = false;
      }
    });
  }
})();
`;
