declare module 'libmime' {
  const libmime: {
    decodeWords(str: string): string;
    decodeWord(charset: string, encoding: string, str: string): string;
    encodeWord(data: string, mimeWordEncoding?: 'Q' | 'B', maxLength?: number): string;
    parseHeaderValue(str: string): { value: string; params: Record<string, string> };
  };
  export default libmime;
}
