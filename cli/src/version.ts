/** kiln's version: the cli package's, one place for `kiln --version`, the server's /api/status and its start line. */
import cliPackage from "../package.json" with { type: "json" };

export const VERSION: string = cliPackage.version;
