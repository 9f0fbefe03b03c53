/**
 * Checks at enqueue that a job's image exists in the configured image store, so a typo in an
 * image id is a 400 now rather than a start failure later. Without a configured store the
 * check is skipped (supervisors report missing images as start errors).
 */
import { imagePath } from "../../lib/store/layout.ts";
import { ApiError } from "./http_errors.ts";

export interface ImageChecker {
  requireImage(imageId: string): Promise<void>;
}

export function imageChecker(imageStoreUrl: string | undefined): ImageChecker {
  const known = new Set<string>(); // Images are immutable: a found id stays found.
  return {
    async requireImage(imageId: string): Promise<void> {
      if (imageStoreUrl === undefined || known.has(imageId)) return;
      const url = `${imageStoreUrl.replace(/\/+$/, "")}/${imagePath(imageId)}`;
      let response: Response;
      try {
        response = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(10_000) });
      } catch (error) {
        throw new ApiError(
          502,
          "image_store_unreachable",
          `Cannot check image "${imageId}": the image store at "${imageStoreUrl}" is unreachable`,
          { cause: error },
        );
      }
      await response.body?.cancel();
      if (response.status === 404) {
        throw new ApiError(
          400,
          "unknown_image",
          `Cannot enqueue job: image "${imageId}" does not exist in the image store`,
          { field: "image_id" },
        );
      }
      if (!response.ok) {
        throw new ApiError(
          502,
          "image_store_error",
          `Cannot check image "${imageId}": the image store answered ${response.status}`,
        );
      }
      known.add(imageId);
    },
  };
}
