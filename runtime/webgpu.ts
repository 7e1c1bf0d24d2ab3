// The webgpu backend (@tensorflow/tfjs-backend-webgpu): finding an adapter, telling a hardware GPU from a
// software rasterizer, starting the backend on it, and releasing the device at the end (Dawn keeps a Node
// process alive while its device lives). Browsers give navigator.gpu; Node gets Dawn from the `webgpu`
// package through runtime/webgpu_node.ts, imported only here and only dynamically.
import * as tf from "@tensorflow/tfjs-core";

/** What we use of WebGPU's GPU / adapter / device (its types are not part of the build). */
export interface GpuLike {
  requestAdapter(options?: Record<string, unknown>): Promise<AdapterLike | null>;
}
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
export interface AdapterLike {
  readonly info: AdapterInfoLike;
  readonly features: ReadonlySet<string>;
  readonly limits: Record<string, number>;
  requestDevice(descriptor?: Record<string, unknown>): Promise<DeviceLike>;
}
export interface DeviceLike {
  destroy(): void;
}

/** A software rasterizer, not a GPU: Mesa's llvmpipe/softpipe/lavapipe, SwiftShader, Windows' WARP. */
export function isSoftwareAdapter(info: AdapterInfoLike): boolean {
  if (info.isFallbackAdapter) return true;
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ");
  return /llvmpipe|softpipe|lavapipe|swiftshader|software|microsoft basic render/i.test(text);
}

/** The adapter in words: "llvmpipe-llvm-15-0-6-256-bits- (OpenGL version OpenGL ES 3.2 Mesa 22.3.6)". */
export function adapterName(info: AdapterInfoLike): string {
  const name = [info.vendor, info.device || info.architecture].filter(Boolean).join(" ") || "unnamed adapter";
  return info.description && info.description !== name ? `${name} (${info.description})` : name;
}

/**
 * Whether a hardware GPU can be there at all, cheaply and without loading Dawn (whose attempts at absent
 * drivers print warnings): on Linux a GPU has a DRM render node or an NVIDIA device file; elsewhere, maybe.
 */
async function gpuDevicePresent(): Promise<boolean> {
  if (typeof process === "undefined" || process.platform !== "linux") return true;
  // Through process.getBuiltinModule, not an import: this module is also in browser bundles.
  const fs = process.getBuiltinModule?.("node:fs") as typeof import("node:fs") | undefined;
  if (!fs) return true;
  const has = (dir: string, re: RegExp) => {
    try {
      return fs.readdirSync(dir).some((f) => re.test(f));
    } catch {
      return false;
    }
  };
  return has("/dev/dri", /^renderD\d+$/) || has("/dev", /^nvidia\d+$/);
}

interface Held {
  gpu: GpuLike;
  device: DeviceLike;
  adapter: AdapterLike;
}
let held: Held | null = null;

/** The first adapter: navigator.gpu's in browsers, else Dawn's (runtime/webgpu_node.ts), in its order. */
async function findAdapter(): Promise<{ gpu: GpuLike; adapter: AdapterLike } | "no-package" | null> {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (nav) {
    const adapter = await nav.requestAdapter({ powerPreference: "high-performance" });
    return adapter ? { gpu: nav, adapter } : null;
  }
  // package.json's "browser" field empties webgpu_node.js in browser bundles (they have navigator.gpu or nothing).
  const { nodeGpus } = (await import("./webgpu_node.js")) as Partial<typeof import("./webgpu_node.js")>;
  const tries = nodeGpus ? await nodeGpus() : null;
  if (!tries) return "no-package";
  for (const t of tries) {
    const gpu = t.create();
    const adapter = await gpu.requestAdapter(t.options);
    if (adapter) return { gpu, adapter };
  }
  return null;
}

export type WebgpuStart = { ok: true; adapter: string; software: boolean } | { ok: false; why: string };

/**
 * Starts the webgpu backend and makes it current. `allowSoftware`: use a software rasterizer too (when
 * --backend webgpu asks for it); otherwise only a hardware GPU is taken, and the reason why not is returned.
 */
export async function startWebgpu(allowSoftware: boolean): Promise<WebgpuStart> {
  if (held && tf.findBackend("webgpu")) {
    const software = isSoftwareAdapter(held.adapter.info);
    if (software && !allowSoftware) return { ok: false, why: `only a software adapter (${adapterName(held.adapter.info)})` };
    return (await tf.setBackend("webgpu")) ? { ok: true, adapter: adapterName(held.adapter.info), software } : { ok: false, why: "the webgpu backend could not start" };
  }
  if (!allowSoftware && !(await gpuDevicePresent())) return { ok: false, why: "no GPU device (/dev/dri/renderD*, /dev/nvidia*)" };
  let WebGPUBackend: new (device: DeviceLike, info?: AdapterInfoLike) => tf.KernelBackend;
  try {
    ({ WebGPUBackend } = (await import("@tensorflow/tfjs-backend-webgpu")) as unknown as { WebGPUBackend: typeof WebGPUBackend });
  } catch {
    return { ok: false, why: "@tensorflow/tfjs-backend-webgpu is not installed" };
  }
  let found: Awaited<ReturnType<typeof findAdapter>>;
  try {
    found = await findAdapter();
  } catch (e) {
    return { ok: false, why: `WebGPU failed: ${(e as Error).message}` };
  }
  if (found === "no-package") return { ok: false, why: "the webgpu package (Dawn for Node) is not installed or does not load on this platform" };
  if (!found) return { ok: false, why: "no WebGPU adapter" };
  const { gpu, adapter } = found;
  const software = isSoftwareAdapter(adapter.info);
  if (software && !allowSoftware) return { ok: false, why: `only a software adapter (${adapterName(adapter.info)})` };
  // The limits tfjs-backend-webgpu asks for, and the storage buffers per stage its fused kernels bind (more
  // than compatibility mode's default of 4).
  const wanted = ["maxComputeWorkgroupStorageSize", "maxComputeWorkgroupsPerDimension", "maxStorageBufferBindingSize", "maxBufferSize", "maxComputeWorkgroupSizeX", "maxComputeInvocationsPerWorkgroup", "maxStorageBuffersPerShaderStage"];
  const requiredLimits = Object.fromEntries(wanted.filter((k) => typeof adapter.limits[k] === "number").map((k) => [k, adapter.limits[k]!]));
  const requiredFeatures = ["timestamp-query"].filter((f) => adapter.features.has(f));
  let device: DeviceLike;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch (e) {
    return { ok: false, why: `the WebGPU device could not be created: ${(e as Error).message}` };
  }
  held = { gpu, device, adapter };
  // A browser build registers its own factory on import; ours uses the adapter chosen here.
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", () => withNavigatorGpu(gpu, () => new WebGPUBackend(device, adapter.info)), 0);
  if (!(await tf.setBackend("webgpu"))) {
    releaseWebgpu();
    return { ok: false, why: "the webgpu backend could not start on its device" };
  }
  return { ok: true, adapter: adapterName(adapter.info), software };
}

/**
 * WebGPUBackend's constructor insists on navigator.gpu, which Node lacks: lent for the call only (a global
 * reference would keep Dawn, and so the process, alive, and navigator would make other code think it is in a browser).
 */
function withNavigatorGpu<T>(gpu: GpuLike, f: () => T): T {
  const g = globalThis as { navigator?: { gpu?: GpuLike } };
  if (g.navigator?.gpu) return f();
  const had = "navigator" in g;
  if (!had) g.navigator = {};
  const nav = g.navigator!;
  const before = Object.getOwnPropertyDescriptor(nav, "gpu");
  Object.defineProperty(nav, "gpu", { value: gpu, configurable: true });
  try {
    return f();
  } finally {
    if (before) Object.defineProperty(nav, "gpu", before);
    else delete nav.gpu;
    if (!had) delete g.navigator;
  }
}

/**
 * Frees the webgpu backend's buffers and destroys its device, so that Dawn lets the process exit. The current
 * backend, when it was webgpu, becomes cpu. Idempotent; a later startWebgpu starts afresh.
 */
export function releaseWebgpu(): void {
  if (!held) return;
  if (tf.getBackend() === "webgpu" && tf.findBackend("cpu")) tf.setBackend("cpu");
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  held.device.destroy();
  held = null;
}
