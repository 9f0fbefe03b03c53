/** The tml release version, printed by `tml --version` and sent in protocol greetings. */
export const TML_VERSION = "0.1.0";
