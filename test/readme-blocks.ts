/** The README's ```js examples, as readme.test.ts runs them and types.test.ts type-checks them. */
import { readFileSync } from 'node:fs';

export const readmeBlocks: string[] = [...readFileSync(new URL('../README.md', import.meta.url), 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
