// Images for image_folder: PNG, JPEG and WebP decoded by sharp (libvips; its binaries ship inside its npm
// packages), EXIF orientation applied, to 8-bit RGB (grey expanded, alpha dropped), then a bilinear resize to
// size × size with half-pixel centres (tf.image.resizeBilinear's). Bounded: a file over IMAGE_LIMITS.bytes or an
// image declaring more than IMAGE_LIMITS.pixels pixels is refused before it is decoded.
import { limit } from "../../compiler/limits.js";
import { DataError, overLimitError } from "./errors.js";

/** From compiler/limits.ts (NNETC_MAX_IMAGE_MB, NNETC_MAX_IMAGE_MPIXELS), read at each use (tests lower them by the variables). */
export const IMAGE_LIMITS = {
  get bytes(): number {
    return limit("imageBytes");
  },
  get pixels(): number {
    return limit("imagePixels");
  },
};

/** The extensions image_folder reads. */
export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".webp"];

export interface RgbImage {
  width: number;
  height: number;
  /** height × width × 3 bytes, row-major. */
  data: Uint8Array;
}

type Sharp = typeof import("sharp").default;
let sharpModule: Promise<Sharp> | null = null;

/** sharp, loaded on first use (commands without images never load libvips). */
function sharp(): Promise<Sharp> {
  sharpModule ??= import("sharp").then((m) => ((m as unknown as { default?: Sharp }).default ?? m) as Sharp);
  return sharpModule;
}

/** Decode a PNG, JPEG or WebP file's bytes to 8-bit RGB. */
export async function decodeImage(buf: Uint8Array, file: string): Promise<RgbImage> {
  if (buf.length > IMAGE_LIMITS.bytes) throw overLimitError("imageBytes", file, buf.length);
  const s = await sharp();
  try {
    const img = s(buf, { limitInputPixels: IMAGE_LIMITS.pixels, failOn: "error", sequentialRead: true });
    const { data, info } = await img.autoOrient().removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    const m = (e as Error).message;
    if (/pixel limit/i.test(m)) throw overLimitError("imagePixels", file, "it declares more than");
    if (/unsupported image format/i.test(m)) throw new DataError(`${file}: not a PNG, JPEG or WebP image`);
    throw new DataError(`${file}: cannot decode the image (${m.split("\n")[0]})`);
  }
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

/** 8-bit grey (1 channel) or RGB (3) pixels, row-major, as PNG bytes (predict's image grids). */
export async function encodePng(data: Uint8Array, width: number, height: number, channels: 1 | 3): Promise<Uint8Array> {
  const s = await sharp();
  const img = s(data, { raw: { width, height, channels } });
  // sharp writes raw single-channel pixels as sRGB unless told that they are grey
  const buf = await (channels === 1 ? img.toColourspace("b-w") : img).png().toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
