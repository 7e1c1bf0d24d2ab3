// WebGPU for Node: Dawn through the `webgpu` package (dawn.node). Node-only, and imported only dynamically
// (runtime/webgpu.ts), so that browsers, which have navigator.gpu, never load it.
//
// Dawn is tried as configured by default (Vulkan, Metal or D3D12: a hardware GPU when there is one), then on
// OpenGL ES in compatibility mode, which reaches Mesa's software rasterizer (llvmpipe) on a machine without a
// GPU: EGL_PLATFORM=surfaceless (set here unless already set) lets Mesa's EGL run without a display. On Linux
// the default try is skipped when the Vulkan loader is not installed (Dawn would only print a warning).
import { readFileSync } from "node:fs";
import type { GpuLike } from "./webgpu.js";

interface Dawn {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

function vulkanLoader(): boolean {
  if (process.platform !== "linux") return true;
  try {
    return readFileSync("/etc/ld.so.cache").includes("libvulkan.so.1");
  } catch {
    return true;
  }
}

/** Dawn's instances to try in turn (made on demand), with the options that get an adapter from each; null when the package cannot load. */
export async function nodeGpus(): Promise<{ create: () => GpuLike; options: Record<string, unknown> }[] | null> {
  let dawn: Dawn;
  try {
    dawn = (await import("webgpu")) as unknown as Dawn;
  } catch {
    return null;
  }
  process.env.EGL_PLATFORM ??= "surfaceless";
  // GPUBufferUsage, GPUMapMode, GPUShaderStage…: tfjs-backend-webgpu reads them as globals, as in browsers.
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  return [
    ...(vulkanLoader() ? [{ create: () => dawn.create([]), options: { powerPreference: "high-performance" } }] : []),
    { create: () => dawn.create(["backend=opengles"]), options: { featureLevel: "compatibility" } },
  ];
}
