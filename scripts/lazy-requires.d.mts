// Types for the tests that import scripts/lazy-requires.mjs.
export declare const LAZY: { importer: string; specs: string[] }[];
export declare const ASSERT_IMPORTERS: string[];
export declare const PATCHES: { file: string; replace: [string, string][] }[];
export declare function lazyModuleCode(load: string): string;
export declare const ASSERT_CODE: string;
export declare const EXCLUDED: { importer: string; specs: string[] }[];
export declare function excludedModuleCode(spec: string): string;
export declare const SOURCE_LAZY: string[];
export declare function lazyBuiltinEsm(spec: string): string;
export declare function lazyRequiresPlugin(o?: { sourceRoot?: string }): { plugin: { name: string; setup(build: any): void }; verify(): void };
