/** PBKDF2 password hashes: the stored form, verification, older costs, malformed rows. */
import { describe, expect, test } from "bun:test";
import { DEFAULT_PASSWORD_ITERATIONS, hashPassword, verifyPassword } from "@kiln/core/auth";

describe("passwords", () => {
  test("a hash describes itself, is salted, and verifies only its password", async () => {
    const a = await hashPassword("correct horse");
    const b = await hashPassword("correct horse");
    expect(a).toMatch(new RegExp(`^pbkdf2-sha256\\$${DEFAULT_PASSWORD_ITERATIONS}\\$[A-Za-z0-9+/]{22}==\\$[A-Za-z0-9+/]{43}=$`));
    expect(a).not.toBe(b);
    expect(await verifyPassword("correct horse", a)).toBe(true);
    expect(await verifyPassword("correct horsf", a)).toBe(false);
    expect(await verifyPassword("", a)).toBe(false);
  });

  test("a hash made at another cost still verifies (the count is read from it); unicode is normalised", async () => {
    const cheap = await hashPassword("p\u00e4ssword", { iterations: 1000 });
    expect(cheap.startsWith("pbkdf2-sha256$1000$")).toBe(true);
    // the same text typed as "a" + combining diaeresis
    expect(await verifyPassword("pa\u0308ssword", cheap)).toBe(true);
  });

  test("malformed or absurd stored hashes are refused, not thrown on", async () => {
    const good = await hashPassword("x", { iterations: 10 });
    const [, , salt, hash] = good.split("$");
    for (const stored of ["", "plain", `pbkdf2-sha256$0$${salt}$${hash}`, `pbkdf2-sha256$99999999$${salt}$${hash}`, `pbkdf2-sha1$10$${salt}$${hash}`, `pbkdf2-sha256$10$!!$${hash}`, `pbkdf2-sha256$10$${salt}$`]) {
      expect(await verifyPassword("x", stored)).toBe(false);
    }
    await expect(hashPassword("x", { iterations: 0 })).rejects.toThrow("iterations");
  });
});
