// The client against a running gateway: BRANET_URL names it, BRANET_TEST_IMAGE a PNG to send.
// tests/integration/test_typescript_client.py starts the real stack and runs this.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

import { createAnalysis, createBraNetClient, fetchBlob, type Analysis } from "../src/index.js";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name} (tests/integration/test_typescript_client.py does)`);
  return value;
}

const client = createBraNetClient({ baseUrl: required("BRANET_URL") });
const image = new Blob([await readFile(required("BRANET_TEST_IMAGE"))], { type: "image/png" });

async function analyse(): Promise<Analysis> {
  const { data, error, response } = await createAnalysis(client, {
    file: image,
    modality: "ultrasound",
    box: "4,4,40,40",
  });
  assert.equal(response.status, 201, JSON.stringify(error));
  assert.ok(data);
  assert.equal(response.headers.get("Location"), `/v1/analyses/${data.id}`);
  return data;
}

test("an analysis is created, read back, paged, downloaded with its ETag and deleted", async () => {
  const first = await analyse();
  const second = await analyse();
  assert.ok(["benign", "malignant"].includes(first.label));
  assert.equal(first.image.content_type, "image/png");

  const read = await client.GET("/v1/analyses/{analysis_id}", {
    params: { path: { analysis_id: first.id } },
  });
  assert.deepEqual(read.data, first);

  const page = await client.GET("/v1/analyses", { params: { query: { limit: 1 } } });
  assert.deepEqual(page.data?.items.map((a) => a.id), [second.id]);
  const cursor = page.data?.next_cursor;
  assert.ok(cursor);
  const next = await client.GET("/v1/analyses", { params: { query: { limit: 1, cursor } } });
  assert.deepEqual(next.data?.items.map((a) => a.id), [first.id]);

  const fetched = await fetchBlob(client, first.id, "image");
  assert.equal(fetched.status, "fetched");
  if (fetched.status !== "fetched") return;
  assert.equal(fetched.etag, `"${first.image.sha256}"`);
  assert.deepEqual(Buffer.from(await fetched.blob.arrayBuffer()), Buffer.from(await image.arrayBuffer()));
  const again = await fetchBlob(client, first.id, "image", fetched.etag ?? undefined);
  assert.equal(again.status, "not_modified");

  const head = await client.HEAD("/v1/analyses/{analysis_id}/image", {
    params: { path: { analysis_id: first.id } },
  });
  assert.equal(head.response.status, 200);
  assert.equal(head.response.headers.get("Content-Length"), String(first.image.size));

  for (const analysis of [first, second]) {
    const deleted = await client.DELETE("/v1/analyses/{analysis_id}", {
      params: { path: { analysis_id: analysis.id } },
    });
    assert.equal(deleted.response.status, 204);
  }
  const gone = await client.GET("/v1/analyses/{analysis_id}", {
    params: { path: { analysis_id: first.id } },
  });
  assert.equal(gone.response.status, 404);
  // Typed: `code` is one of the codes this route documents.
  const code: "unauthenticated" | "not_found" | "invalid_parameter" | undefined = gone.error?.code;
  assert.equal(code, "not_found");
});

test("readiness reads as its schema, ready or not", async () => {
  const { data, error, response } = await client.GET("/readyz");
  const readiness = data ?? error; // 200 and 503 both answer a Readiness
  assert.ok(readiness);
  assert.equal(readiness.status, response.ok ? "ready" : "not_ready");
  assert.equal(readiness.checks["classifier"]?.ok, true);
});

test("a refused upload is a problem with a stable code", async () => {
  const { error, response } = await createAnalysis(client, {
    file: new Blob(["%PDF-1.4"], { type: "application/pdf" }),
    modality: "ultrasound",
  });
  assert.equal(response.status, 415);
  assert.equal(response.headers.get("Content-Type"), "application/problem+json");
  assert.equal(error?.code, "unsupported_media_type");
});
