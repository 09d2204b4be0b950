// Generates src/schema.d.ts from the gateway's OpenAPI document (the contract committed in
// tests/contracts/, which a test keeps equal to what the gateway serves) with openapi-typescript.
//     node scripts/generate.mjs ../../tests/contracts/gateway.openapi.json src/schema.d.ts
// Binary fields (the multipart `file`, the image downloads) become `Blob`, what React Native's
// and Node's FormData and fetch take and give, instead of openapi-typescript's `string`.
import { readFile, writeFile } from "node:fs/promises";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const [source, target] = process.argv.slice(2);
const BLOB = ts.factory.createTypeReferenceNode(ts.factory.createIdentifier("Blob"));

const isBinary = (schema) =>
  schema.format === "binary" || (schema.type === "string" && "contentMediaType" in schema);

const document = JSON.parse(await readFile(source, "utf8"));
const nodes = await openapiTS(document, {
  defaultNonNullable: false, // a field with a default may be left out of a request
  transform(schema) {
    return isBinary(schema) ? BLOB : undefined;
  },
});
const banner =
  "// Generated from tests/contracts/gateway.openapi.json by scripts/generate.mjs: do not edit.\n" +
  "// `make typescript-client` regenerates it; CI fails if it differs from the document.\n\n";
await writeFile(target, banner + astToString(nodes));
