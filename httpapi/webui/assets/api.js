// api.js: the API client. Every path is relative to the page, so the UI
// works under any prefix; the session cookie authenticates, never a key
// in a URL.

export class APIError extends Error {
  constructor(status, code, message, requestID, details) {
    super(message);
    this.status = status; this.code = code; this.requestID = requestID; this.details = details;
  }
}

let onAuthNeeded = () => {};
export function setAuthHandler(f) { onAuthNeeded = f; }

// url resolves an API path ("api/runs") or a link the API returned
// ("/dyno/api/runs/1") against the page.
export function url(p) { return new URL(p, document.baseURI).href; }

async function errorOf(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  const e = body && (body.error || body);
  const message = (e && (e.message || (typeof e.error === 'string' ? e.error : ''))) || `${res.status} ${res.statusText}`;
  return new APIError(res.status, (e && e.code) || '', message, (e && e.request_id) || '', (e && e.details) || null);
}

export async function request(method, path, body, opts = {}) {
  // X-Requested-With: the server refuses state changes made with the
  // session cookie without it (a cross-site form cannot send it).
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', 'X-Requested-With': 'dynoai-ui' } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers['Content-Type'] = 'application/json'; }
  if (opts.signal) init.signal = opts.signal;
  const res = await fetch(url(path), init);
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 || (res.status === 403 && err.code === 'INVALID_API_KEY')) onAuthNeeded(err);
    throw err;
  }
  if (res.status === 204) return null;
  const ct = res.headers.get('Content-Type') || '';
  return ct.includes('json') ? res.json() : res.text();
}

export const get = (p, o) => request('GET', p, undefined, o);
export const post = (p, b, o) => request('POST', p, b, o);
export const del = (p, o) => request('DELETE', p, undefined, o);

// upload posts a multipart form with upload progress (fetch has none).
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', url(path));
    x.withCredentials = true;
    x.setRequestHeader('Accept', 'application/json');
    x.setRequestHeader('X-Requested-With', 'dynoai-ui');
    x.upload.onprogress = (ev) => { if (ev.lengthComputable) onProgress(ev.loaded / ev.total); };
    x.onerror = () => reject(new APIError(0, 'NETWORK', 'the upload failed: the server could not be reached', '', null));
    x.onload = () => {
      let body = null;
      try { body = JSON.parse(x.responseText); } catch { /* not JSON */ }
      if (x.status >= 200 && x.status < 300) { resolve(body); return; }
      const e = body && (body.error || body);
      const err = new APIError(x.status, (e && e.code) || '', (e && e.message) || `${x.status} ${x.statusText}`, (e && e.request_id) || '', (e && e.details) || null);
      if (x.status === 401) onAuthNeeded(err);
      reject(err);
    };
    x.send(form);
  });
}

// pick reads the first present field of several spellings, so the UI keeps
// working while the API settles on one name per field (run_id, status...).
export function pick(o, ...names) {
  if (!o) return undefined;
  for (const n of names) if (o[n] !== undefined && o[n] !== null) return o[n];
  return undefined;
}
