import { plugin } from "../../plugins/cpu_scalar/mod.ts";
import { nativeSuite } from "./_native_suite.ts";

await nativeSuite(plugin, { quantisesX: false });
