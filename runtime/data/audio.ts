// Audio for audio_folder: WAV files parsed by wavefile (pure JavaScript, RIFF/RIFX/RF64 chunks), PCM 8-bit
// (unsigned), 16-, 24- and 32-bit (signed) and 32-bit float, plain or WAVE_FORMAT_EXTENSIBLE; any other coding
// (A-law, µ-law, ADPCM, 64-bit float…) is refused naming the file. Samples become float32 in [-1, 1) (PCM n-bit
// divided by 2^(n−1), 8-bit centred on 128, as soundfile and torchaudio read them), channels are averaged to mono,
// then the clip is resampled (dsp.ts, band-limited) and padded with zeros or cut to a fixed length. Bounded: a file
// over AUDIO_LIMITS.bytes, or declaring more than AUDIO_LIMITS.seconds of audio, is refused before it is decoded.
import { createRequire } from "node:module";
import { limit } from "../../compiler/limits.js";
import { DataError, overLimitError } from "./errors.js";
import { resampledLength, resampleSinc } from "./dsp.js";

/** Bytes and seconds from compiler/limits.ts (NNETC_MAX_AUDIO_MB, NNETC_MAX_AUDIO_SECONDS), read at each use (tests lower them by the variables). */
export const AUDIO_LIMITS = {
  get bytes(): number {
    return limit("audioBytes");
  },
  get seconds(): number {
    return limit("audioSeconds");
  },
  rate: 384_000,
};

/** The extensions audio_folder reads. */
export const AUDIO_EXTENSIONS = [".wav", ".wave"];

export interface Clip {
  rate: number;
  /** Mono samples in [-1, 1). */
  samples: Float32Array;
}

interface WaveFileLike {
  container: string;
  fmt: { audioFormat: number; numChannels: number; sampleRate: number; bitsPerSample: number; blockAlign: number; subformat?: number[] };
  data: { chunkSize: number; samples: Uint8Array };
  getSamples(interleaved: boolean, out: Float64ArrayConstructor): Float64Array;
}
type WaveFileCtor = new (bytes?: Uint8Array) => WaveFileLike;
let waveFile: WaveFileCtor | null = null;

/** wavefile's class, loaded on first use (its CommonJS build). */
function WaveFile(): WaveFileCtor {
  waveFile ??= (createRequire(import.meta.url)("wavefile") as { WaveFile: WaveFileCtor }).WaveFile;
  return waveFile;
}

const PCM = 1;
const FLOAT = 3;
const EXTENSIBLE = 0xfffe;
const FORMAT_NAMES: Record<number, string> = { 2: "Microsoft ADPCM", 6: "A-law", 7: "µ-law", 17: "IMA ADPCM", 85: "MP3", 80: "MPEG" };

/** Decode a WAV file's bytes to mono float32 samples at the file's rate. */
export function decodeWav(buf: Uint8Array, file: string): Clip {
  if (buf.length > AUDIO_LIMITS.bytes) throw overLimitError("audioBytes", file, buf.length);
  const W = WaveFile();
  let w: WaveFileLike;
  try {
    w = new W(buf);
  } catch (e) {
    const m = (e as Error).message;
    throw new DataError(`${file}: not a WAV file (${/supported format|"WAVE"/i.test(m) ? "no RIFF/WAVE header" : m.charAt(0).toLowerCase() + m.slice(1)})`);
  }
  const { audioFormat, numChannels: ch, sampleRate: rate, bitsPerSample: bits, blockAlign } = w.fmt;
  const coding = audioFormat === EXTENSIBLE ? (w.fmt.subformat?.[0] ?? 0) : audioFormat;
  const pcm = coding === PCM && [8, 16, 24, 32].includes(bits);
  const float = coding === FLOAT && bits === 32;
  if (!pcm && !float) {
    const what = coding === PCM ? `${bits}-bit PCM` : coding === FLOAT ? `${bits}-bit float` : (FORMAT_NAMES[coding] ?? `format code ${coding}`);
    throw new DataError(`${file}: ${what} audio is not supported; audio_folder reads PCM of 8, 16, 24 or 32 bits and 32-bit float WAV files (convert it, e.g. with sox or ffmpeg -c:a pcm_s16le)`);
  }
  if (!(ch >= 1) || !(rate >= 1) || blockAlign !== (ch * bits) / 8) throw new DataError(`${file}: the WAV header is inconsistent (${ch} channels, ${rate} Hz, ${bits} bits, ${blockAlign} bytes per frame)`);
  if (rate > AUDIO_LIMITS.rate) throw new DataError(`${file}: a sample rate of ${rate} Hz is over the ${AUDIO_LIMITS.rate} Hz audio_folder reads`);
  const have = w.data.samples.length;
  if (w.data.chunkSize > have) throw new DataError(`${file}: the file is truncated: its data chunk declares ${w.data.chunkSize} bytes but only ${have} follow`);
  const frames = Math.floor(have / blockAlign);
  // Whole frames only: a partial last frame (a writer's stray byte) is dropped.
  if (frames * blockAlign !== have) w.data.samples = w.data.samples.subarray(0, frames * blockAlign);
  if (frames / rate > AUDIO_LIMITS.seconds) throw overLimitError("audioSeconds", file, Math.round(frames / rate));
  let inter: ArrayLike<number>;
  let scale: number;
  let offset = 0;
  if (float) {
    // Plain float WAVs decode through wavefile; an extensible one it reads as integers, so its bytes are read here.
    const v = new DataView(w.data.samples.buffer, w.data.samples.byteOffset, frames * blockAlign);
    const le = w.container !== "RIFX";
    const f = new Float32Array(frames * ch);
    for (let i = 0; i < f.length; i++) {
      f[i] = v.getFloat32(i * 4, le);
      if (!Number.isFinite(f[i]!)) throw new DataError(`${file}: sample ${Math.floor(i / ch)} is ${f[i]}; a float WAV must hold finite numbers`);
    }
    inter = f;
    scale = 1;
  } else {
    inter = w.getSamples(true, Float64Array);
    scale = 1 / 2 ** (bits - 1);
    if (bits === 8) offset = 128;
  }
  const samples = new Float32Array(frames);
  for (let t = 0; t < frames; t++) {
    let acc = 0;
    for (let c = 0; c < ch; c++) acc += inter[t * ch + c]!;
    samples[t] = ((acc / ch - offset) * scale);
  }
  return { rate, samples };
}

/** Where a clip sits in its fixed length: its start (cut at the end, padded at the end), or centred. */
export type Align = "start" | "center";

/**
 * A clip at `rate` (resampled when its own differs), padded with zeros or cut to `length` samples, written to out at
 * `at` (out holds zeros there).
 */
export function fitClip(clip: Clip, rate: number, length: number, align: Align, out: Float32Array, at: number): void {
  // Only the samples kept are computed: a clip's length at the new rate, then the window of it that fits.
  const n = clip.rate === rate ? clip.samples.length : resampledLength(clip.samples.length, clip.rate, rate);
  const skip = n > length && align === "center" ? Math.floor((n - length) / 2) : 0;
  const pad = n < length && align === "center" ? Math.floor((length - n) / 2) : 0;
  const count = Math.min(n, length);
  if (clip.rate === rate) out.set(clip.samples.subarray(skip, skip + count), at + pad);
  else resampleSinc(clip.samples, clip.rate, rate, out, at + pad, skip, count);
}
