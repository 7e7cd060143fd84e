// The MVP1 viewer pixels (imaging/viewer_pixels.py), as the browser receives them (already inflated from gzip):
// undo the byte planes and the horizontal differences. Shared by the pixel worker and the page.

const MAGIC = 0x3150564d; // "MVP1" read as a little-endian uint32
const HEADER_BYTES = 24;

// Unpack an MVP1 body (already inflated by the browser): undo the byte planes and the horizontal differences.
export function unpackViewerPixels(buffer) {
  const view = new DataView(buffer);
  if (buffer.byteLength < HEADER_BYTES || view.getUint32(0, true) !== MAGIC) {
    throw new Error("The server did not send viewer pixels (MVP1).");
  }
  const rows = view.getUint32(4, true);
  const columns = view.getUint32(8, true);
  const width = view.getUint8(12);
  const signed = view.getUint8(13) === 1;
  const smallest = view.getInt32(16, true);
  const largest = view.getInt32(20, true);
  const count = rows * columns;
  const body = new Uint8Array(buffer, HEADER_BYTES);
  if ((width !== 1 && width !== 2) || body.length !== count * width) {
    throw new Error("The viewer pixels are damaged (its size does not match its header).");
  }
  let pixels;
  if (width === 2) {
    const values = new Uint16Array(count);
    const high = body.subarray(0, count);
    const low = body.subarray(count);
    for (let row = 0, offset = 0; row < rows; row++) {
      let sum = 0;
      const end = offset + columns;
      for (; offset < end; offset++) {
        sum = (sum + ((high[offset] << 8) | low[offset])) & 0xffff;
        values[offset] = sum;
      }
    }
    pixels = signed ? new Int16Array(values.buffer) : values;
  } else {
    pixels = new Uint8Array(count);
    for (let row = 0, offset = 0; row < rows; row++) {
      let sum = 0;
      const end = offset + columns;
      for (; offset < end; offset++) {
        sum = (sum + body[offset]) & 0xff;
        pixels[offset] = sum;
      }
    }
  }
  return { rows, columns, width, signed, smallest, largest, pixels };
}
