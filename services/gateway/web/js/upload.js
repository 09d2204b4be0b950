// What the gateway accepts, checked before a byte is sent: the size limit, and the type by
// the file's content (as the gateway judges it), not by its name.

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];
const DICM = [0x44, 0x49, 0x43, 0x4d]; // "DICM" after the 128-byte preamble

// As the API counts its limit (10 MB is 10 × 2^20 bytes).
export function megabytes(bytes) {
  return `${Number((bytes / 2 ** 20).toFixed(1))} MB`;
}

function startsWith(bytes, signature, offset = 0) {
  return signature.every((value, index) => bytes[offset + index] === value);
}

// "png", "jpeg" or "dicom"; an Error worded for the user otherwise.
export async function checkUpload(file, maxBytes) {
  if (file.size > maxBytes) {
    throw new Error(
      `This file is ${megabytes(file.size)}: the gateway takes at most ${megabytes(maxBytes)}.`,
    );
  }
  if (file.size === 0) throw new Error("This file is empty.");
  const head = new Uint8Array(await file.slice(0, 132).arrayBuffer());
  if (startsWith(head, PNG)) return "png";
  if (startsWith(head, JPEG)) return "jpeg";
  if (startsWith(head, DICM, 128)) return "dicom";
  throw new Error("This file is not a PNG, JPEG or DICOM (Part 10) image.");
}

// The name the file is sent under: never the caller's, which may name the patient.
export const UPLOAD_NAMES = { png: "image.png", jpeg: "image.jpg", dicom: "image.dcm" };
