// Signal processing of the audio steps (steps.ts: resample, spectrogram, mel, mfcc) and of audio_folder:
// band-limited resampling (torchaudio's sinc_interp_hann), a radix-2 FFT, the magnitude STFT with a periodic Hann
// window (TensorFlow's tf.signal.stft framing), TensorFlow's HTK mel filterbank (linear_to_mel_weight_matrix) and
// the orthonormal DCT-II (scipy's norm="ortho", as librosa's MFCC). Computed in float64, stored as float32.
//
// The FFT is our own (40 lines): the steps need real FFTs of power-of-two sizes only, which a textbook iterative
// radix-2 transform does exactly (tested against numpy), with no package to bundle or keep.

/** torchaudio's defaults: the filter reaches 6 zero crossings each side; its cutoff is 0.99 × the lower Nyquist. */
const LOWPASS_WIDTH = 6;
const ROLLOFF = 0.99;

/** The most samples a clip may hold after resampling (17 minutes at 16 kHz). */
export const MAX_CLIP = 2 ** 24;

/** Samples a clip of n samples at `from` Hz has at `to` Hz: ceil(n · to / from), as torchaudio's resample. */
export function resampledLength(n: number, from: number, to: number): number {
  return Math.floor((n * to + from - 1) / from);
}

/**
 * Resample `x` (one clip) from `from` Hz to `to` Hz with a Hann-windowed sinc low-pass filter: torchaudio's
 * functional.resample (sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99), the signal zero outside the clip.
 * Output sample m is Σ_n x[n] · k(t), t = 0.99 · min(from, to) · (n / from − m / to), k(t) = sinc(πt) · cos²(πt / 12)
 * · 0.99 · min(from, to) / from for |t| ≤ 6: a filter evaluated directly, so coprime rates need no table, and only the
 * output samples asked for (`count` from `first`) cost anything: about 12 · max(1, from / to) terms each.
 */
export function resampleSinc(x: ArrayLike<number>, from: number, to: number, out: Float32Array | Float64Array = new Float32Array(resampledLength(x.length, from, to)), at = 0, first = 0, count = resampledLength(x.length, from, to) - first): Float32Array | Float64Array {
  const n = x.length;
  // Output samples first … first + count − 1 go to out[at …].
  if (from === to) {
    for (let i = 0; i < count; i++) out[at + i] = x[first + i]!;
    return out;
  }
  const base = ROLLOFF * Math.min(from, to);
  const scale = base / from;
  // |t| ≤ 6 ⟺ |n − m·from/to| ≤ 6·from/base.
  const reach = (LOWPASS_WIDTH * from) / base;
  for (let m = first; m < first + count; m++) {
    const centre = (m * from) / to;
    const lo = Math.max(0, Math.ceil(centre - reach));
    const hi = Math.min(n - 1, Math.floor(centre + reach));
    let acc = 0;
    for (let i = lo; i <= hi; i++) {
      const t = base * (i / from - m / to);
      if (t === 0) {
        acc += x[i]! * scale;
        continue;
      }
      const c = Math.cos((Math.PI * t) / (2 * LOWPASS_WIDTH));
      const pt = Math.PI * t;
      acc += x[i]! * (Math.sin(pt) / pt) * c * c * scale;
    }
    out[at + m - first] = acc;
  }
  return out;
}

/** The smallest power of two ≥ n. */
export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** An in-place radix-2 FFT of size re.length (a power of two), with its bit-reversal and twiddles precomputed. */
export class Fft {
  readonly size: number;
  private readonly rev: Uint32Array;
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;

  constructor(size: number) {
    if (size < 1 || (size & (size - 1)) !== 0) throw new Error(`FFT size ${size} is not a power of two`);
    this.size = size;
    this.rev = new Uint32Array(size);
    const bits = Math.log2(size);
    for (let i = 0; i < size; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
    this.cos = new Float64Array(size / 2);
    this.sin = new Float64Array(size / 2);
    for (let i = 0; i < size / 2; i++) {
      this.cos[i] = Math.cos((2 * Math.PI * i) / size);
      this.sin[i] = -Math.sin((2 * Math.PI * i) / size);
    }
  }

  /** X[k] = Σ x[n] e^{−2πi kn/N}, in place. */
  transform(re: Float64Array, im: Float64Array): void {
    const n = this.size;
    for (let i = 0; i < n; i++) {
      const j = this.rev[i]!;
      if (j > i) {
        const tr = re[i]!;
        re[i] = re[j]!;
        re[j] = tr;
        const ti = im[i]!;
        im[i] = im[j]!;
        im[j] = ti;
      }
    }
    for (let len = 2; len <= n; len *= 2) {
      const half = len / 2;
      const stride = n / len;
      for (let s = 0; s < n; s += len) {
        for (let k = 0; k < half; k++) {
          const wr = this.cos[k * stride]!;
          const wi = this.sin[k * stride]!;
          const a = s + k;
          const b = a + half;
          const xr = re[b]! * wr - im[b]! * wi;
          const xi = re[b]! * wi + im[b]! * wr;
          re[b] = re[a]! - xr;
          im[b] = im[a]! - xi;
          re[a] = re[a]! + xr;
          im[a] = im[a]! + xi;
        }
      }
    }
  }
}

/** Frames of a clip of n samples: 1 + floor((n − frame) / hop), no padding (tf.signal.stft's pad_end false). */
export function stftFrames(n: number, frame: number, hop: number): number {
  return n < frame ? 0 : 1 + Math.floor((n - frame) / hop);
}

/** The magnitude STFT of one clip, as tf.signal.stft: periodic Hann window of `frame` samples, each frame zero-padded at its end to `fft`; [frames, fft/2 + 1] written to out at `at`. */
export class Stft {
  readonly bins: number;
  private readonly fft: Fft;
  private readonly window: Float64Array;
  private readonly re: Float64Array;
  private readonly im: Float64Array;

  constructor(
    readonly frame: number,
    readonly hop: number,
    size: number,
  ) {
    this.fft = new Fft(size);
    this.bins = size / 2 + 1;
    this.window = new Float64Array(frame);
    for (let i = 0; i < frame; i++) this.window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / frame);
    this.re = new Float64Array(size);
    this.im = new Float64Array(size);
  }

  run(x: ArrayLike<number>, offset: number, n: number, out: Float32Array, at: number): void {
    const frames = stftFrames(n, this.frame, this.hop);
    for (let f = 0; f < frames; f++) {
      this.re.fill(0);
      this.im.fill(0);
      const start = offset + f * this.hop;
      for (let i = 0; i < this.frame; i++) this.re[i] = x[start + i]! * this.window[i]!;
      this.fft.transform(this.re, this.im);
      const o = at + f * this.bins;
      for (let k = 0; k < this.bins; k++) out[o + k] = Math.sqrt(this.re[k]! * this.re[k]! + this.im[k]! * this.im[k]!);
    }
  }
}

/** HTK's mel scale, as TensorFlow's: 1127 · ln(1 + f / 700). */
export const hzToMel = (f: number): number => 1127 * Math.log(1 + f / 700);

/**
 * TensorFlow's linear_to_mel_weight_matrix: [bins, mels] triangles equally spaced on the HTK mel scale from fmin
 * to fmax, evaluated at the spectrogram bins' frequencies (bin i at i · rate / 2 / (bins − 1)), the DC bin zeroed;
 * no area normalization. Row-major [bins][mels].
 */
export function melWeights(bins: number, mels: number, rate: number, fmin: number, fmax: number): Float64Array {
  const w = new Float64Array(bins * mels);
  const lo = hzToMel(fmin);
  const hi = hzToMel(fmax);
  const edge = (j: number) => lo + ((hi - lo) * j) / (mels + 1);
  for (let i = 1; i < bins; i++) {
    const m = hzToMel((i * rate) / 2 / (bins - 1));
    for (let j = 0; j < mels; j++) {
      const l = edge(j);
      const c = edge(j + 1);
      const u = edge(j + 2);
      w[i * mels + j] = Math.max(0, Math.min((m - l) / (c - l), (u - m) / (u - c)));
    }
  }
  return w;
}

/** The first `keep` rows of the orthonormal DCT-II of size n (scipy's norm="ortho"): [keep][n]. */
export function dctMatrix(n: number, keep: number): Float64Array {
  const d = new Float64Array(keep * n);
  for (let k = 0; k < keep; k++) {
    const s = Math.sqrt((k === 0 ? 1 : 2) / n);
    for (let i = 0; i < n; i++) d[k * n + i] = s * Math.cos((Math.PI * k * (2 * i + 1)) / (2 * n));
  }
  return d;
}
