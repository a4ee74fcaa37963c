// The JSON API as the page uses it: relative URLs (the page is served by the API itself), the
// stored key as a Bearer header, and errors that say what failed.

const KEY_STORE = "shopfloor.api_key";

export class KeyNeeded extends Error {
  constructor(refused, message) {
    super(message);
    this.refused = refused; // a key was sent and the API refused it
  }
}

export class ApiError extends Error {
  constructor(status, message, url) {
    super(message);
    this.status = status;
    this.url = url;
  }
}

export function apiUrl(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) q.set(k, v);
  const query = q.toString();
  return `api/v1${path}${query ? `?${query}` : ""}`;
}

export function storedKey() {
  return localStorage.getItem(KEY_STORE);
}

export function storeKey(key) {
  localStorage.setItem(KEY_STORE, key);
}

export function forgetKey() {
  localStorage.removeItem(KEY_STORE);
}

export async function getJson(url) {
  const headers = { Accept: "application/json" };
  const key = storedKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(url, { headers });
  } catch (exc) {
    throw new ApiError(0, `the API does not answer (${exc.message})`, url);
  }
  const body = await response.json().catch(() => null);
  const message = body?.error?.message ?? response.statusText;
  if (response.status === 401) throw new KeyNeeded(Boolean(key), message);
  if (!response.ok) throw new ApiError(response.status, message, url);
  return body;
}
