// The gateway's /v1 API as the page calls it: the signed-in user's token on every request,
// and every failure as an ApiError worded as the API worded it (problem+json `detail`).

const UNREACHABLE = "The gateway could not be reached: check the connection and try again.";
const ACCEPT = "application/json, application/problem+json";

export class ApiError extends Error {
  constructor(detail, status = 0, code = "unreachable") {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

function problem(status, text) {
  let detail = `The gateway answered ${status}.`;
  let code = `http_${status}`;
  try {
    const body = JSON.parse(text);
    if (typeof body.detail === "string" && body.detail) detail = body.detail;
    if (typeof body.code === "string") code = body.code;
  } catch {
    // not problem+json (a proxy's page): the status says enough
  }
  return new ApiError(detail, status, code);
}

export class Api {
  // `token`: an async function giving the ID token to send, or null (no sign-in).
  constructor(token) {
    this.token = token;
  }

  async headers(extra = {}) {
    const token = await this.token();
    return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
  }

  async fetch(method, path) {
    let response;
    try {
      response = await fetch(path, { method, headers: await this.headers({ Accept: ACCEPT }) });
    } catch {
      throw new ApiError(UNREACHABLE);
    }
    if (!response.ok) throw problem(response.status, await response.text());
    return response;
  }

  async list(limit, cursor) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor) query.set("cursor", cursor);
    return (await this.fetch("GET", `/v1/analyses?${query}`)).json();
  }

  async remove(id) {
    await this.fetch("DELETE", `/v1/analyses/${encodeURIComponent(id)}`);
  }

  // A stored blob (image, mask, crop, heatmap) as an object URL: <img> cannot send a token.
  async blobUrl(url) {
    return URL.createObjectURL(await this.blob(url));
  }

  async blob(url) {
    return (await this.fetch("GET", url)).blob();
  }

  // POST /v1/analyses with upload progress, which fetch cannot report. `onProgress(fraction)`
  // gets the uploaded fraction, then null once the gateway is analysing.
  async create(form, idempotencyKey, onProgress) {
    const headers = await this.headers({ Accept: ACCEPT, "Idempotency-Key": idempotencyKey });
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("POST", "/v1/analyses");
      for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      request.upload.addEventListener("load", () => onProgress(null));
      request.addEventListener("error", () => reject(new ApiError(UNREACHABLE)));
      request.addEventListener("load", () => {
        if (request.status === 201) resolve(JSON.parse(request.responseText));
        else reject(problem(request.status, request.responseText));
      });
      request.send(form);
    });
  }
}
