// Starts the Firestore emulator on the port given as the only argument and prints "ready".
// Tests run it with FIRESTORE_EMULATOR_HOST=127.0.0.1:<port> for the official Python client.
import { FirestoreServer } from "@firestore-emulator/server";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node server.mjs PORT");
  process.exit(2);
}
const server = new FirestoreServer();
await server.start(port);
console.log(`ready on ${port}`);
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
