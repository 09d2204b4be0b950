// A typed client of the BraNet gateway for the mobile app (React Native) and Node.
// The types come from the gateway's OpenAPI document (src/schema.d.ts, generated); the calls
// are openapi-fetch's, so every path, parameter, answer and error `code` is checked by tsc.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths } from "./schema.js";
export type Analysis = components["schemas"]["Analysis"];
export type AnalysisPage = components["schemas"]["AnalysisPage"];
export type Problem = components["schemas"]["Problem"];
export type Modality = components["schemas"]["Modality"];
export type BlobKind = "image" | "mask" | "roi" | "heatmap";
export type CreateAnalysisFields = components["schemas"]["Body_createAnalysis"];
export type BraNetClient = Client<paths>;

export interface BraNetClientOptions {
  /** The gateway's URL, e.g. `https://branet-gateway-….run.app`. */
  baseUrl: string;
  /** The signed-in user's Firebase ID token (refreshed by the Firebase SDK); none on the
   * embedded default, which serves one local user. */
  idToken?: () => Promise<string | null | undefined> | string | null | undefined;
  /** A fetch of your own (tests, a platform's); the global one by default. */
  fetch?: typeof globalThis.fetch;
}

export function createBraNetClient(options: BraNetClientOptions): BraNetClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const idToken = options.idToken;
  if (idToken) {
    client.use({
      async onRequest({ request }) {
        const token = await idToken();
        if (token) request.headers.set("Authorization", `Bearer ${token}`);
        return request;
      },
    });
  }
  return client;
}

/** The multipart body of `POST /v1/analyses`: pass as `bodySerializer`. */
export function analysisForm(fields: CreateAnalysisFields): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    if (value instanceof Blob) form.append(name, value, name === "file" ? "upload" : undefined);
    else form.append(name, String(value));
  }
  return form;
}

/** Starts an analysis: `{ data }` with the Analysis, or `{ error }` with its Problem. */
export function createAnalysis(client: BraNetClient, fields: CreateAnalysisFields) {
  return client.POST("/v1/analyses", { body: fields, bodySerializer: analysisForm });
}

export type BlobFetch =
  | { status: "fetched"; blob: Blob; etag: string | null }
  | { status: "not_modified"; etag: string }
  | { status: "failed"; problem: Problem | undefined; response: Response };

/** One of an analysis's images. With the `etag` of a copy already held, an unchanged blob is
 * a 304 and nothing is downloaded again. */
export async function fetchBlob(
  client: BraNetClient,
  analysisId: string,
  kind: BlobKind,
  etag?: string,
): Promise<BlobFetch> {
  const { response } = await client.GET(`/v1/analyses/{analysis_id}/${kind}`, {
    params: { path: { analysis_id: analysisId }, header: { "if-none-match": etag ?? null } },
    parseAs: "stream",
  });
  if (response.status === 304 && etag) return { status: "not_modified", etag };
  if (response.ok) {
    return { status: "fetched", blob: await response.blob(), etag: response.headers.get("ETag") };
  }
  const problem = (await response.json().catch(() => undefined)) as Problem | undefined;
  return { status: "failed", problem, response };
}
