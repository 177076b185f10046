import { defineMethods } from '../catalogue.js';

export const methods = defineMethods([]);
