// THE rule that names a layer's PyTorch module. The emitted Python module (compiler/emit/torch.ts) registers
// each layer with weights at this path, and the weight conversion (runtime/torch_layout.ts) reads and writes
// state_dict keys under it, so a checkpoint moves between engines without a `map`. A layer `a/b/c` is the
// module `a.b.c` (block instances become nested modules); a path segment that is a Python keyword or an
// attribute of torch.nn.Module (`to`, `eval`, `float`, `type`, …) gets a trailing `_`, so that it can be
// registered at all. Pure and dependency-free: the compiler imports it from here (nnetc/runtime loads
// nothing of the compiler).

/** Python's keywords (3.8–3.12) and soft keywords. */
const PYTHON_KEYWORDS = [
  "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except",
  "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try",
  "while", "with", "yield", "match", "case", "type", "_",
];

/** The public attributes of torch.nn.Module (torch 1.13 and 2.x): a submodule cannot be registered under these. */
const MODULE_ATTRIBUTES = [
  "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda", "double",
  "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half",
  "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters",
  "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
  "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
  "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state",
  "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu", "zero_grad",
];

/** Path segments that get a trailing `_` in a module path. */
export const TORCH_RESERVED: ReadonlySet<string> = new Set([...PYTHON_KEYWORDS, ...MODULE_ATTRIBUTES]);

/** One segment of a layer's name as a Python attribute name. */
export function torchSegment(segment: string): string {
  return TORCH_RESERVED.has(segment) ? `${segment}_` : segment;
}

/** The module path (`Stage_1.Bottleneck.conv2d`) of the layer `Stage_1/Bottleneck/conv2d`. */
export function torchModulePath(layer: string): string {
  return layer.split("/").map(torchSegment).join(".");
}
