// A small PNG decoder on node:zlib (all colour types, bit depths 1–16, no interlacing) and a bilinear
// resize, enough for image_folder. JPEG is recognized and refused with a clear message.
import { inflateSync } from "node:zlib";
import { DataError } from "./errors.js";

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function isPng(buf: Uint8Array): boolean {
  return buf.length >= 8 && SIGNATURE.every((b, i) => buf[i] === b);
}

export function isJpeg(buf: Uint8Array): boolean {
  return buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
}

export interface RgbImage {
  width: number;
  height: number;
  /** height × width × 3 bytes, row-major. */
  data: Uint8Array;
}

/** Decode a PNG to 8-bit RGB (alpha is dropped, 16-bit samples keep their high byte). */
export function decodePng(buf: Uint8Array, file: string): RgbImage {
  const bad = (why: string) => new DataError(`${file}: ${why}`);
  if (!isPng(buf)) throw bad(isJpeg(buf) ? "JPEG images are not supported yet; convert them to PNG" : "not a PNG file");
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let depth = 0;
  let colorType = -1;
  let palette: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  while (pos + 8 <= buf.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(buf[pos + 4]!, buf[pos + 5]!, buf[pos + 6]!, buf[pos + 7]!);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (body.length < len) throw bad(`truncated PNG (chunk ${type})`);
    if (type === "IHDR") {
      if (len < 13) throw bad("bad PNG header");
      width = view.getUint32(pos + 8);
      height = view.getUint32(pos + 12);
      depth = body[8]!;
      colorType = body[9]!;
      if (body[12] !== 0) throw bad("interlaced (Adam7) PNGs are not supported; save it without interlacing");
    } else if (type === "PLTE") palette = body;
    else if (type === "IDAT") idat.push(body);
    else if (type === "IEND") break;
    pos += 12 + len;
  }
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  if (!channels || width < 1 || height < 1) throw bad(`unsupported PNG (colour type ${colorType}, ${width}×${height})`);
  if (![1, 2, 4, 8, 16].includes(depth) || (depth < 8 && channels !== 1) || (colorType === 3 && depth > 8)) throw bad(`unsupported PNG bit depth ${depth}`);
  if (colorType === 3 && !palette) throw bad("palette PNG without a palette");
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw bad(`corrupt PNG data: ${(e as Error).message}`);
  }
  const bpp = Math.max(1, (channels * depth) >> 3);
  const stride = Math.ceil((width * channels * depth) / 8);
  if (raw.length < height * (stride + 1)) throw bad("truncated PNG image data");
  const pix = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = pix.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? pix.subarray((y - 1) * stride, y * stride) : null;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[x - bpp]! : 0;
      const b = up ? up[x]! : 0;
      const c = up && x >= bpp ? up[x - bpp]! : 0;
      let v = line[x]!;
      switch (filter) {
        case 0:
          break;
        case 1:
          v += a;
          break;
        case 2:
          v += b;
          break;
        case 3:
          v += (a + b) >> 1;
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw bad(`bad PNG filter type ${filter}`);
      }
      out[x] = v & 0xff;
    }
  }
  const rgb = new Uint8Array(width * height * 3);
  const sample = (row: Uint8Array, i: number): number => {
    if (depth === 8) return row[i]!;
    if (depth === 16) return row[2 * i]!;
    const perByte = 8 / depth;
    const v = (row[Math.floor(i / perByte)]! >> (8 - depth * ((i % perByte) + 1))) & ((1 << depth) - 1);
    return colorType === 3 ? v : Math.round((v * 255) / ((1 << depth) - 1));
  };
  for (let y = 0; y < height; y++) {
    const row = pix.subarray(y * stride, (y + 1) * stride);
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (colorType === 3) {
        const k = sample(row, x);
        rgb[o] = palette![3 * k] ?? 0;
        rgb[o + 1] = palette![3 * k + 1] ?? 0;
        rgb[o + 2] = palette![3 * k + 2] ?? 0;
      } else if (channels <= 2) {
        const g = sample(row, x * channels);
        rgb[o] = rgb[o + 1] = rgb[o + 2] = g;
      } else {
        rgb[o] = sample(row, x * channels);
        rgb[o + 1] = sample(row, x * channels + 1);
        rgb[o + 2] = sample(row, x * channels + 2);
      }
    }
  }
  return { width, height, data: rgb };
}

/** Bilinear resize to size × size (half-pixel centres, as tf.image.resizeBilinear), written to out at offset. */
export function resizeRgb(img: RgbImage, size: number, out: Uint8Array, offset: number): void {
  const { width: w, height: h, data } = img;
  if (w === size && h === size) {
    out.set(data, offset);
    return;
  }
  const sy = h / size;
  const sx = w / size;
  for (let y = 0; y < size; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const dy = fy - y0;
    for (let x = 0; x < size; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const dx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const top = data[(y0 * w + x0) * 3 + c]! * (1 - dx) + data[(y0 * w + x1) * 3 + c]! * dx;
        const bot = data[(y1 * w + x0) * 3 + c]! * (1 - dx) + data[(y1 * w + x1) * 3 + c]! * dx;
        out[offset + (y * size + x) * 3 + c] = Math.round(top * (1 - dy) + bot * dy);
      }
    }
  }
}
