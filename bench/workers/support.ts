export function figure(line: string): void {
  console.log(`FIGURE ${line}`);
}
