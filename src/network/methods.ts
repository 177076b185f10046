import { defineMethods } from '../agent-extension/catalogue.js';

export const methods = defineMethods([]);
