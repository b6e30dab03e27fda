/** Discord ids: 64-bit snowflakes (ms since 2015 << 22 | counter), 17–19 digits like the real ones. */
const DISCORD_EPOCH = 1420070400000n;
let counter = 0n;

export function snowflake(): string {
  counter = (counter + 1n) & 0xfffn;
  return (((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | counter).toString();
}
