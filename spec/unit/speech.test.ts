// Speech: audio_folder reads class folders of WAV files (wavefile: PCM 8/16/24/32-bit and float32, channels
// averaged, resampled, padded or cut to one length) and the audio steps turn clips into features: resample
// (torchaudio's windowed sinc, checked against its algorithm run by torch's conv1d), spectrogram, mel and mfcc
// (checked against numpy computing TensorFlow's STFT, HTK mel filterbank and the orthonormal DCT-II by formula).
// The zoo's models/speech_cnn.nnet trains on tones the test writes as WAV files, on wasm and torch.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import wavefile from "wavefile";
import { PREPROCESS, SOURCES } from "../../compiler/plan/tables.js";
import { AUDIO_LIMITS, decodeWav } from "../../runtime/data/audio.js";
import { storedColumn } from "../../runtime/data/columns.js";
import { resampleSinc } from "../../runtime/data/dsp.js";
import { DataError } from "../../runtime/data/errors.js";
import { loadDataset } from "../../runtime/data/index.js";
import { compileField } from "../../runtime/data/steps.js";
import type { CallSpec, DatasetSpec, FieldSpec } from "../../runtime/spec.js";
import { codes, compileText, ROOT } from "../helpers.js";
import { PYTHON, requireTorch } from "./torch_shared.js";

const { WaveFile } = wavefile;
const CLI = path.join(ROOT, "dist/nnetc.mjs");
const TMP = mkdtempSync(path.join(os.tmpdir(), "nnetc-speech-"));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

/** A WAV file's bytes: channels of samples in [-1, 1] at `rate`, coded as wavefile's bit depth ("8", "16", "24", "32", "32f", "64", "8a"). */
function wav(channels: Float64Array[], rate: number, depth: string): Uint8Array {
  const float = depth === "32f" || depth === "64";
  const full = 2 ** (Number(depth) - 1);
  const coded = channels.map((c) => Array.from(c, (x) => (float ? x : Math.min(full - 1, Math.round(x * full)) + (depth === "8" ? 128 : 0))));
  const w = new WaveFile();
  w.fromScratch(channels.length, rate, depth, channels.length === 1 ? coded[0]! : coded);
  return w.toBuffer();
}

/** A sine of `freq` Hz, `n` samples at `rate`. */
function tone(freq: number, rate: number, n: number, amp = 0.5, phase = 0): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / rate + phase));
}

function pipeline(shape: number[], steps: CallSpec[], n: number) {
  const field = { name: "x", dtype: "f32", shape, column: "audio", steps } as unknown as FieldSpec;
  return compileField(field, storedColumn("audio", new Float32Array(n), [n]), () => {
    throw new Error("no vocabulary");
  });
}

/** Run steps on one clip. */
function runSteps(x: ArrayLike<number>, steps: CallSpec[], shape: number[]): Float32Array {
  const p = pipeline(shape, steps, x.length);
  return p.run(storedColumn("audio", Float32Array.from(x), [x.length]), [0]).data as Float32Array;
}

function python(script: string, input: unknown): Record<string, number[]> {
  const dir = mkdtempSync(path.join(TMP, "py-"));
  writeFileSync(path.join(dir, "in.json"), JSON.stringify(input));
  writeFileSync(path.join(dir, "ref.py"), script);
  const r = spawnSync(PYTHON, [path.join(dir, "ref.py"), path.join(dir, "in.json"), path.join(dir, "out.json")], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(readFileSync(path.join(dir, "out.json"), "utf8")) as Record<string, number[]>;
}

/** max |a − b| / max |b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length, "lengths");
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / Math.max(m, 1e-12);
}

// ── WAV decoding ────────────────────────────────────────────────────────────────────────────────────

test("WAV: PCM 8/16/24/32-bit and float32 decode to the same samples in [-1, 1); channels are averaged", () => {
  const x = tone(440, 8000, 200, 0.9);
  for (const depth of ["8", "16", "24", "32", "32f"]) {
    const step = Math.max(1e-7, 2 / 2 ** Number.parseInt(depth, 10));
    const mono = decodeWav(wav([x], 8000, depth), `t${depth}.wav`);
    assert.is(mono.rate, 8000);
    assert.is(mono.samples.length, 200);
    for (let i = 0; i < 200; i++) assert.ok(Math.abs(mono.samples[i]! - x[i]!) <= step, `${depth}-bit sample ${i}: ${mono.samples[i]} vs ${x[i]}`);
    // Stereo: left x, right −x/2 → x/4.
    const st = decodeWav(wav([x, x.map((v) => -v / 2)], 8000, depth), `s${depth}.wav`);
    for (let i = 0; i < 200; i++) assert.ok(Math.abs(st.samples[i]! - x[i]! / 4) <= step, `${depth}-bit stereo sample ${i}`);
  }
  // A full-scale 16-bit sample: −32768 → −1, 32767 → 32767/32768.
  const w = new WaveFile();
  w.fromScratch(1, 16000, "16", [-32768, 32767]);
  assert.equal(Array.from(decodeWav(w.toBuffer(), "full.wav").samples), [-1, 32767 / 32768]);
});

test("WAV: other codings, truncated files, non-WAV bytes and files over the bounds are refused naming the file", () => {
  const x = tone(440, 8000, 100);
  const refuse = (bytes: Uint8Array, name: string, re: RegExp) => {
    try {
      decodeWav(bytes, name);
      assert.unreachable(`${name} must be refused`);
    } catch (e) {
      assert.instance(e, DataError);
      assert.ok((e as Error).message.replace(/^NN\d{4}: /, "").startsWith(`${name}: `), (e as Error).message); // a limit's refusal leads with its code
      assert.match((e as Error).message, re);
    }
  };
  refuse(wav([x], 8000, "64"), "f64.wav", /64-bit float audio is not supported; audio_folder reads PCM of 8, 16, 24 or 32 bits and 32-bit float/);
  const alaw = new WaveFile(wav([x], 8000, "16"));
  alaw.toALaw();
  refuse(alaw.toBuffer(), "alaw.wav", /A-law audio is not supported/);
  const good = wav([x], 8000, "16");
  refuse(good.slice(0, good.length - 11), "cut.wav", /truncated: its data chunk declares 200 bytes but only 189 follow/);
  refuse(good.slice(0, 30), "head.wav", /not a WAV file/);
  refuse(new TextEncoder().encode("RIFF? no, just some text that is long enough"), "text.wav", /not a WAV file \(no RIFF\/WAVE header\)/);
  // 601 samples at 1 Hz: over the 600 s a clip may last, refused before decoding.
  refuse(wav([new Float64Array(601)], 1, "8"), "long.wav", /NN7047: long\.wav: 601 s is over the limit of 600 s for the length one audio clip declares.*NNETC_MAX_AUDIO_SECONDS=601/);
  refuse(new Uint8Array(AUDIO_LIMITS.bytes + 1), "big.wav", /NN7046: big\.wav: 64\.0 MB is over the limit of 64 MB for one audio \(WAV\) file.*NNETC_MAX_AUDIO_MB=65/);
});

test("property: any bytes, and any cut or corruption of a WAV file, decode or fail with a DataError", () => {
  const good = wav([tone(300, 8000, 64)], 8000, "16");
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: good.length }), fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), (junk, cut, flips) => {
        const bytes = good.slice(0, cut);
        for (const [at, v] of flips) if (at < bytes.length) bytes[at] = v;
        for (const b of [junk, bytes]) {
          try {
            const c = decodeWav(b, "p.wav");
            assert.ok(c.samples.every((s) => Number.isFinite(s)));
          } catch (e) {
            if (!(e instanceof DataError)) throw e;
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

// ── resample, spectrogram, mel, mfcc against references ─────────────────────────────────────────────

const RESAMPLE_PY = `
import json, math, sys, torch
d = json.load(open(sys.argv[1]))
out = {}
# torchaudio.functional.resample (sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99), as torchaudio 2.x writes it.
def resample(x, orig, new, width=6, rolloff=0.99):
    g = math.gcd(orig, new); orig //= g; new //= g
    base = min(orig, new) * rolloff
    w = math.ceil(width * orig / base)
    idx = torch.arange(-w, w + orig, dtype=torch.float64)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx
    t *= base
    t = t.clamp_(-width, width)
    window = torch.cos(t * math.pi / width / 2) ** 2
    t *= math.pi
    k = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t) * window * (base / orig)
    L = x.shape[-1]
    xp = torch.nn.functional.pad(x[None], (w, w + orig))
    y = torch.nn.functional.conv1d(xp[:, None], k, stride=orig).transpose(1, 2).reshape(1, -1)
    return y[0, : math.ceil(new * L / orig)]
for i, (orig, new) in enumerate(d["rates"]):
    out[str(i)] = resample(torch.tensor(d["x"], dtype=torch.float64), orig, new).tolist()
json.dump(out, open(sys.argv[2], "w"))
`;

test("resample: torchaudio's windowed-sinc resampler (its algorithm on torch's conv1d), up, down and coprime", () => {
  requireTorch();
  const n = 700;
  let s = 5;
  const x = Array.from({ length: n }, (_, i) => Math.sin(i / 7) * 0.4 + ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.3);
  const rates: [number, number][] = [[8000, 16000], [16000, 8000], [44100, 16000], [16000, 22050], [7, 5], [11025, 16000]];
  const ref = python(RESAMPLE_PY, { x, rates });
  rates.forEach(([from, to], i) => {
    const y = resampleSinc(x, from, to, new Float64Array(Math.ceil((n * to) / from)));
    const err = relErr(y, ref[String(i)]!);
    assert.ok(err < 1e-9, `${from} → ${to}: relative error ${err}`);
    // The shape rule of the step says the same length.
    assert.equal(PREPROCESS.resample!.produces!({ orig_freq: from, new_freq: to }, { dtype: "f32", shape: [n] })!.shape, [y.length]);
  });
});

test("resample is band-limited: a tone below the new Nyquist frequency survives, one above it is removed (not aliased)", () => {
  const rms = (a: ArrayLike<number>, from: number, to: number) => {
    let e = 0;
    for (let i = from; i < to; i++) e += a[i]! ** 2;
    return Math.sqrt(e / (to - from));
  };
  const keep = Array.from(resampleSinc(tone(440, 16000, 8000), 16000, 8000));
  const want = tone(440, 8000, 4000);
  const err = keep.slice(100, 3900).reduce((m, v, i) => Math.max(m, Math.abs(v - want[i + 100]!)), 0);
  assert.ok(err < 2e-3, `440 Hz after 16 → 8 kHz: max error ${err}`);
  // 7 kHz at 16 kHz is above 4 kHz: linear interpolation would alias it to 1 kHz at full strength.
  const gone = resampleSinc(tone(7000, 16000, 8000), 16000, 8000);
  assert.ok(rms(gone, 100, 3900) < 0.005 * rms(tone(7000, 16000, 8000), 0, 8000), `7 kHz after 16 → 8 kHz: rms ${rms(gone, 100, 3900)}`);
  // Upsampling a tone gives the tone at the new rate.
  const up = resampleSinc(tone(1000, 8000, 2000), 8000, 16000);
  const upWant = tone(1000, 16000, 4000);
  const upErr = Array.from(up).slice(100, 3900).reduce((m, v, i) => Math.max(m, Math.abs(v - upWant[i + 100]!)), 0);
  assert.ok(upErr < 2e-3, `1 kHz after 8 → 16 kHz: max error ${upErr}`);
});

const FEATURES_PY = `
import json, sys, numpy as np, torch
d = json.load(open(sys.argv[1]))
x = np.array(d["x"], dtype=np.float64)
frame, hop, fft, rate, mels, fmin, fmax, keep = (d[k] for k in ["frame", "hop", "fft", "rate", "mels", "fmin", "fmax", "keep"])
# tf.signal.stft by formula: periodic Hann window, frames without padding, each zero-padded at its end to fft.
frames = 1 + (len(x) - frame) // hop
win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame)
S = np.stack([np.abs(np.fft.rfft(x[f * hop : f * hop + frame] * win, n=fft)) for f in range(frames)])
# torch.stft agrees when the window is padded at its end (torch centres a shorter window).
T = torch.stft(torch.tensor(x), n_fft=fft, hop_length=hop, win_length=fft, window=torch.nn.functional.pad(torch.hann_window(frame, periodic=True, dtype=torch.float64), (0, fft - frame)), center=False, return_complex=True).abs().T.numpy()
# (torch frames need fft samples, so it may have fewer.)
assert np.abs(S[: len(T)] - T).max() < 1e-9 * np.abs(S).max(), "numpy and torch.stft disagree"
# TensorFlow's linear_to_mel_weight_matrix (HTK mel scale, DC bin zeroed), by formula.
hz2mel = lambda f: 1127.0 * np.log1p(f / 700.0)
bins = fft // 2 + 1
m = hz2mel(np.linspace(0, rate / 2, bins))[:, None]
e = np.linspace(hz2mel(fmin), hz2mel(fmax), mels + 2)
W = np.maximum(0, np.minimum((m - e[:-2]) / (e[1:-1] - e[:-2]), (e[2:] - m) / (e[2:] - e[1:-1])))
W[0] = 0
M = S @ W
L = np.log(M + 1e-6)
# The orthonormal DCT-II (scipy's norm="ortho"), by formula.
k = np.arange(keep)[:, None]; i = np.arange(mels)[None, :]
D = np.cos(np.pi * k * (2 * i + 1) / (2 * mels)) * np.where(k == 0, np.sqrt(1 / mels), np.sqrt(2 / mels))
C = L @ D.T
json.dump({"spec": S.ravel().tolist(), "mel": M.ravel().tolist(), "logmel": L.ravel().tolist(), "mfcc": C.ravel().tolist(), "shape": [frames, bins]}, open(sys.argv[2], "w"))
`;

test("spectrogram, mel (HTK, as TensorFlow) and mfcc (orthonormal DCT-II) against numpy by formula (and torch.stft)", () => {
  requireTorch();
  const rate = 16000;
  const n = 4000;
  let s = 9;
  const x = Array.from({ length: n }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 523 * i) / rate) + 0.2 * Math.sin((2 * Math.PI * 2900 * i) / rate + 1) + ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.05);
  const cfg = { frame: 400, hop: 160, fft: 512, rate, mels: 40, fmin: 20, fmax: 7600, keep: 13 };
  const ref = python(FEATURES_PY, { x, ...cfg });
  const [frames, bins] = ref.shape as [number, number];
  const spec = { fn: "spectrogram", args: { frame: 400, hop: 160, fft: 512 } };
  const mel = (log: boolean) => ({ fn: "mel", args: { bins: 40, rate, fmin: 20, fmax: 7600, log } });
  const cases: [string, CallSpec[], number[]][] = [
    ["spec", [spec], [frames, bins]],
    ["mel", [spec, mel(false)], [frames, 40]],
    ["logmel", [spec, mel(true)], [frames, 40]],
    ["mfcc", [spec, mel(true), { fn: "mfcc", args: { n: 13 } }], [frames, 13]],
  ];
  for (const [name, steps, shape] of cases) {
    const got = runSteps(x, steps, shape);
    const err = relErr(got, ref[name]!);
    assert.ok(err < 1e-4, `${name}: relative error ${err}`);
  }
  // The shape rules (what the checker knows) agree with the kernels.
  const s1 = PREPROCESS.spectrogram!.produces!({ frame: 400, hop: 160, fft: null }, { dtype: "*", shape: [n] })!;
  assert.equal(s1.shape, [frames, bins]);
  assert.equal(PREPROCESS.mel!.produces!({ bins: 40 }, s1)!.shape, [frames, 40]);
  assert.equal(PREPROCESS.mfcc!.produces!({ n: 13 }, { dtype: "f32", shape: [frames, 40] })!.shape, [frames, 13]);
});

test("a 1 kHz sine peaks in bin 1000 / (16000 / 512) = 32 of every frame; mel puts it in the band around 1 kHz", () => {
  const rate = 16000;
  const x = tone(1000, rate, 4000, 0.7, 0.3);
  const frames = 1 + Math.floor((4000 - 512) / 256);
  const spec = runSteps(x, [{ fn: "spectrogram", args: { frame: 512, hop: 256 } }], [frames, 257]);
  for (let f = 0; f < frames; f++) {
    const row = spec.subarray(f * 257, (f + 1) * 257);
    const peak = row.indexOf(Math.max(...row));
    assert.is(peak, 32, `frame ${f} peaks in bin ${peak}`);
    // The periodic Hann window's gain: amplitude × frame / 4 at an exact bin.
    assert.ok(Math.abs(row[32]! - (0.7 * 512) / 4) < 1e-3, `peak ${row[32]}`);
  }
  // 8 mel bands from 0 to 8 kHz (HTK): 10 edges 2840 / 9 = 315.6 mel apart, band j rising from edge j to its centre,
  // edge j + 1. 1 kHz is 1000 mel: 53 mel past band 2's centre (946.7), 262 before band 3's (1262.2), so band 2
  // weighs it 0.83 and band 3 0.17 (the window's neighbouring bins add a little).
  const mel = runSteps(x, [{ fn: "spectrogram", args: { frame: 512, hop: 256 } }, { fn: "mel", args: { bins: 8, rate } }], [frames, 8]);
  const row = Array.from(mel.subarray(0, 8));
  assert.is(row.indexOf(Math.max(...row)), 2, `mel row ${row.map((v) => v.toFixed(1))}`);
  assert.ok(Math.abs(row[3]! / row[2]! - 0.17 / 0.83) < 0.03 && row.every((v, j) => j === 2 || j === 3 || v < 1e-3 * row[2]!), `mel row ${row.map((v) => v.toFixed(2))}`);
});

test("step arguments that cannot work are refused naming the field", () => {
  const bad = (steps: CallSpec[], n: number, re: RegExp) => {
    try {
      pipeline([1], steps, n);
      assert.unreachable("must be refused");
    } catch (e) {
      assert.instance(e, DataError);
      assert.match((e as Error).message, re);
    }
  };
  bad([{ fn: "spectrogram", args: { frame: 400, hop: 160, fft: 500 } }], 1000, /field "x": spectrogram's fft must be a power of two ≥ frame \(400\), got 500; e\.g\. fft: 512/);
  bad([{ fn: "spectrogram", args: { frame: 400, hop: 160 } }], 300, /frame \(400\) is longer than the clip \(300 samples\)/);
  bad([{ fn: "mel", args: { bins: 8, rate: 16000 } }], 300, /mel works on a spectrogram \[frames, bins\] \(after spectrogram\(…\)\), but its input has shape \[300\]/);
  bad([{ fn: "spectrogram", args: { frame: 64, hop: 32 } }, { fn: "mel", args: { bins: 8, rate: 16000, fmax: 9000 } }], 300, /mel needs 0 ≤ fmin < fmax ≤ rate \/ 2 \(8000 Hz\)/);
  bad([{ fn: "spectrogram", args: { frame: 64, hop: 32 } }, { fn: "mel", args: { bins: 8, rate: 16000 } }, { fn: "mfcc", args: { n: 9 } }], 300, /mfcc's n must be an integer from 1 to the mel bins \(8\), got 9/);
});

test("property: the checker's shape rules of resample and spectrogram are what the kernels make", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 48000 }), fc.integer({ min: 1, max: 48000 }), fc.integer({ min: 2, max: 300 }), fc.integer({ min: 1, max: 200 }), (n, from, to, frame, hop) => {
      const r = PREPROCESS.resample!.produces!({ orig_freq: from, new_freq: to }, { dtype: "*", shape: [n] })!;
      assert.is(r.shape[0], Math.ceil((n * to) / from - 1e-9));
      const s = PREPROCESS.spectrogram!.produces!({ frame, hop, fft: null }, { dtype: "*", shape: [n] });
      if (n < frame) return assert.is(s, null);
      const p = pipeline(s!.shape, [{ fn: "spectrogram", args: { frame, hop } }], n);
      assert.equal(p.info.shape, s!.shape);
    }),
    { numRuns: 200 },
  );
});

// ── audio_folder and the zoo model ──────────────────────────────────────────────────────────────────

const WORDS = ["down", "go", "left", "no", "right", "stop", "up", "yes"];
const FREQS = [300, 450, 700, 1000, 1500, 2200, 3300, 5000];

/** `per` clips per class of TensorFlow's eight words, each a tone of its class's frequency (0.25–0.5 s, random phase, amplitude and noise), mostly 16-bit mono at 16 kHz, some 8 kHz, stereo, 24-bit or float. */
function writeTones(dir: string, per: number): void {
  let s = 3;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  WORDS.forEach((word, c) => {
    mkdirSync(path.join(dir, word), { recursive: true });
    for (let i = 0; i < per; i++) {
      const rate = i % 5 === 1 && FREQS[c]! < 3500 ? 8000 : 16000;
      const n = Math.round((0.25 + 0.25 * rand()) * rate);
      const x = tone(FREQS[c]!, rate, n, 0.3 + 0.5 * rand(), 6.28 * rand()).map((v) => v + 0.02 * (rand() - 0.5));
      const channels = i % 5 === 2 ? [x, x.map((v) => v * 0.5)] : [x];
      const depth = i % 5 === 3 ? "24" : i % 5 === 4 ? "32f" : "16";
      writeFileSync(path.join(dir, word, `${word}_${i}.wav`), wav(channels, rate, depth));
    }
  });
  writeFileSync(path.join(dir, "README.md"), "tones, one folder per word\n");
  writeFileSync(path.join(dir, "yes", "notes.txt"), "not audio\n");
}

const audioDataset = (args: Record<string, unknown>, fields: { name: string; shape: number[]; column: string; dtype?: string; steps?: CallSpec[] }[]) =>
  ({ name: "d", source: { fn: "audio_folder", args: { path: "clips", ...args } }, test: null, split: {}, filter: null, fields: fields.map((f) => ({ dtype: "f32", steps: [], ...f })) }) as unknown as DatasetSpec;

test("audio_folder: class folders → label, clips resampled to the rate and padded or cut to one length; classes named", async () => {
  const dir = path.join(TMP, "folder");
  mkdirSync(path.join(dir, "clips", "high"), { recursive: true });
  mkdirSync(path.join(dir, "clips", "low"), { recursive: true });
  writeFileSync(path.join(dir, "clips", "high", "a.wav"), wav([tone(2000, 16000, 1600)], 16000, "16"));
  writeFileSync(path.join(dir, "clips", "low", "b.wav"), wav([tone(200, 8000, 400, 0.5)], 8000, "16"));
  writeFileSync(path.join(dir, "clips", "low", "skip.txt"), "x");
  const fields = [{ name: "audio", shape: [1000], column: "audio" }, { name: "label", shape: [], column: "label", dtype: "i32" }];
  const data = await loadDataset(audioDataset({ rate: 16000, samples: 1000 }, fields), { dataDir: null, baseDir: dir, seed: 0 });
  assert.equal(data.classes, ["high", "low"]);
  assert.ok(data.notes.some((n) => /Skipped 1 file .* not a WAV file/.test(n)) && data.notes.some((n) => /Resampled 1 of the 2 clips .* to 16000 Hz/.test(n)), data.notes.join("\n"));
  const b = data.train.batch([0, 1]);
  assert.equal(b.audio!.shape, [2, 1000]);
  assert.equal(Array.from(b.label!.data), [0, 1]);
  // high: cut to its first 1000 samples; low: 400 samples at 8 kHz → 800 at 16 kHz, then zeros.
  const want = tone(2000, 16000, 1000);
  for (let i = 0; i < 1000; i++) assert.ok(Math.abs(b.audio!.data[i]! - want[i]!) < 1e-4, `high ${i}`);
  const low = b.audio!.data.subarray(1000);
  const lowWant = tone(200, 16000, 800, 0.5);
  for (let i = 50; i < 750; i++) assert.ok(Math.abs(low[i]! - lowWant[i]!) < 2e-3, `low ${i}: ${low[i]} vs ${lowWant[i]}`);
  assert.ok(low.subarray(800).every((v) => v === 0), "padded with zeros");
  // align: center cuts the middle 1000 of 1600 samples.
  const centred = await loadDataset(audioDataset({ rate: 16000, samples: 1000, align: "center" }, fields), { dataDir: null, baseDir: dir, seed: 0 });
  assert.ok(Math.abs(centred.train.batch([0]).audio!.data[0]! - tone(2000, 16000, 1600)[300]!) < 1e-4);
  // Without a rate, clips of two rates are refused naming the file and what to write.
  try {
    await loadDataset(audioDataset({ seconds: 0.05 }, fields), { dataDir: null, baseDir: dir, seed: 0 });
    assert.unreachable("two rates without rate: must be refused");
  } catch (e) {
    assert.match((e as Error).message, /b\.wav: 8000 Hz, but .*a\.wav has 16000 Hz; give audio_folder a rate \(rate: 16000\)/);
  }
  try {
    await loadDataset(audioDataset({ rate: 16000, samples: 1000, seconds: 1 }, fields), { dataDir: null, baseDir: dir, seed: 0 });
    assert.unreachable("seconds and samples: must be refused");
  } catch (e) {
    assert.match((e as Error).message, /give seconds or samples, not both/);
  }
  // A broken file is named.
  writeFileSync(path.join(dir, "clips", "low", "c.wav"), wav([tone(200, 16000, 400)], 16000, "16").slice(0, 100));
  try {
    await loadDataset(audioDataset({ rate: 16000, samples: 1000 }, fields), { dataDir: null, baseDir: dir, seed: 0 });
    assert.unreachable("a truncated file must be refused");
  } catch (e) {
    assert.match((e as Error).message, /clips\/low\/c\.wav: the file is truncated/);
  }
  // Over the file-size bound: refused from its size, before it is read.
  rmSync(path.join(dir, "clips", "low", "c.wav"));
  process.env.NNETC_MAX_AUDIO_MB = String(2000 / 2 ** 20);
  try {
    await loadDataset(audioDataset({ rate: 16000, samples: 1000 }, fields), { dataDir: null, baseDir: dir, seed: 0 });
    assert.unreachable("a file over the bound must be refused");
  } catch (e) {
    assert.match((e as Error).message, /NN7046: .*clips\/high\/a\.wav: [\d.]+ MB is over the limit of 0\.00191 MB for one audio \(WAV\) file; .*NNETC_MAX_AUDIO_MB=/);
  } finally {
    delete process.env.NNETC_MAX_AUDIO_MB;
  }
  // The checker knows the column's shape from the arguments: samples, or round(seconds × rate).
  assert.equal(SOURCES.audio_folder!.shapeOf!("audio", { rate: 16000, seconds: 0.5 }), [8000]);
  assert.equal(SOURCES.audio_folder!.shapeOf!("audio", { samples: 123 }), [123]);
  assert.is(SOURCES.audio_folder!.shapeOf!("audio", { seconds: 1 }), null);
});

test("the checker knows audio_folder's column and the audio steps' shapes (NN5002), and reshape's -1 after them", () => {
  const ds = (field: string, source = 'audio_folder(path: "a", rate: 16000, seconds: 0.5)') => `dataset d {\n  source ${source}\n  field x: ${field}\n  field label: i32 = label\n}\n`;
  assert.equal(codes(compileText(ds("f32[8000] = audio"))), []);
  assert.equal(codes(compileText(ds("f32[8001] = audio"))), ["NN5002"]);
  assert.match(compileText(ds("f32[8001] = audio")).diagnostics[0]!.message, /column audio holds \[8000\] but it is declared f32\[8001\]/);
  // Without a rate the length is the files' business: nothing to check before the data is read.
  assert.equal(codes(compileText(ds("f32[8001] = audio", 'audio_folder(path: "a", seconds: 0.5)'))), []);
  const chain = "audio -> resample(orig_freq: 16000, new_freq: 8000) -> spectrogram(frame: 200, hop: 80) -> mel(bins: 32, rate: 8000, log: true) -> mfcc(12)";
  // 8000 → 4000 samples; 1 + (4000 − 200) / 80 = 48 frames of 129 bins; 32 mel bands; 12 coefficients.
  assert.equal(codes(compileText(ds(`f32[48, 12, 1] = ${chain} -> reshape([-1, 12, 1])`))), []);
  const wrong = compileText(ds(`f32[48, 13] = ${chain}`));
  assert.equal(codes(wrong), ["NN5002"]);
  assert.match(wrong.diagnostics[0]!.message, /its steps produce f32\[48, 12\] but it is declared f32\[48, 13\]/);
});

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 400_000, maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const records = (dir: string) => readFileSync(path.join(dir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);
const ZOO = path.join(ROOT, "models/speech_cnn.nnet");

test("nnetc data on the zoo model's dataset: log-mel features [98, 40, 1] and the word of each label", () => {
  writeTones(path.join(TMP, "mini_speech_commands"), 6);
  const r = cli(["data", ZOO, "--data", TMP, "-n", "3"]);
  assert.is(r.code, 0, r.err);
  const lines = r.out.trim().split("\n").map((l) => JSON.parse(l) as { features: number[][][]; label: number; "label.class": string });
  assert.is(lines.length, 3);
  for (const l of lines) {
    assert.is(l.features.length, 98);
    assert.ok(l.features.every((row) => row.length === 40 && row.every((c) => c.length === 1 && Number.isFinite(c[0]))));
    assert.is(l["label.class"], WORDS[l.label]);
  }
  assert.match(r.err, /Skipped 1 file .* not a WAV file/);
});

/** Eight epochs of 43 clips: the training loss falls by a fifth, and training (with dropout) and test accuracy are well above chance (1/8). */
function learned(run: string): void {
  const recs = records(run);
  const trace = recs.map((e) => `${e.loss.toFixed(3)}/${e.accuracy!.toFixed(2)}`).join(" → ");
  assert.ok(recs.at(-1)!.loss < 0.8 * recs[0]!.loss && recs.at(-1)!.accuracy! > 0.3, `loss/accuracy ${trace}`);
  const t = JSON.parse(readFileSync(path.join(run, "test.json"), "utf8")) as Record<string, number>;
  assert.ok(t.accuracy! >= 0.4, `test accuracy ${t.accuracy} (5 clips)`);
}

test("models/speech_cnn.nnet trains on tones (wasm): the loss falls and accuracy is well above chance", () => {
  const out = path.join(TMP, "wasm");
  const r = cli(["train", ZOO, "--data", TMP, "--epochs", "8", "--batch", "8", "--backend", "wasm", "--out", out]);
  assert.is(r.code, 0, r.err);
  const recs = records(out);
  learned(out);
});

test("nnetc predict takes WAV files as they are: each clip of a folder goes through audio_folder's reading and the dataset's steps, and gets a word", () => {
  const out = path.join(TMP, "wasm");
  const folder = path.join(TMP, "mini_speech_commands", "yes");
  const wavs = readdirSync(folder).filter((f) => f.endsWith(".wav"));
  const r = cli(["predict", ZOO, "--weights", out, "--data", TMP, "--input", folder, "--json", "--top", "2", "--backend", "cpu"]);
  assert.is(r.code, 0, r.err);
  const rows = r.out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>).filter((x) => "logits_top" in x);
  assert.is(rows.length, wavs.length);
  for (const row of rows) {
    const top = row.logits_top as { name: string; probability: number }[];
    assert.is(top.length, 2);
    assert.ok(WORDS.includes(top[0]!.name) && top[0]!.probability >= top[1]!.probability, JSON.stringify(row));
  }
  // One file alone gives the same answer as in the folder (no batch effects), and a file that is not WAV is refused by name.
  const one = cli(["predict", ZOO, "--weights", out, "--data", TMP, "--input", path.join(folder, wavs[0]!), "--json", "--backend", "cpu"]);
  assert.is(one.code, 0, one.err);
  const single = one.out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>).find((x) => "logits_top" in x)!;
  assert.equal((single.logits as number[]).map((v) => v.toFixed(4)), (rows[0]!.logits as number[]).map((v) => v.toFixed(4)));
  const bad = cli(["predict", ZOO, "--weights", out, "--data", TMP, "--input", path.join(folder, "notes.txt"), "--backend", "cpu"]);
  assert.is(bad.code, 2, bad.out + bad.err);
  assert.match(bad.err, /notes\.txt/);
});

test("models/speech_cnn.nnet trains on torch too", () => {
  requireTorch();
  const out = path.join(TMP, "torch");
  const r = cli(["train", ZOO, "--data", TMP, "--epochs", "8", "--batch", "8", "--engine", "torch", "--out", out]);
  assert.is(r.code, 0, r.err);
  const recs = records(out);
  learned(out);
});

test.run();
