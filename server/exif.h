/* exif.h — the EXIF Orientation tag, read the way Pillow's Image.getexif() reads it.
 *
 * Pure functions over caller-owned bytes: no allocation, no global state, every read bounded
 * by the given length (safe on hostile input). */
#ifndef CLIPPREP_EXIF_H
#define CLIPPREP_EXIF_H

#include <stddef.h>
#include <stdint.h>

/* Return values of exif_find_orientation() / xmp_find_orientation() besides a tag value. */
#define EXIF_ORIENTATION_ABSENT (-1) /* no Orientation tag (or no readable IFD0 at all) */
#define EXIF_ORIENTATION_OTHER 0     /* tag present, but its value is not an integer 1..8 */

/* Orientation (tag 0x0112) of IFD0 in a TIFF/EXIF blob. Any number of leading "Exif\0\0"
 * headers are skipped (JPEG APP1 payloads and WebP EXIF chunks may carry one, PNG eXIf does
 * not). Accepts the four classic TIFF byte-order headers Pillow accepts ("II*\0", "MM\0*",
 * and the swapped "II\0*", "MM*\0"); BigTIFF and anything else count as "no EXIF".
 * Follows Pillow: the last duplicate tag wins; entries after a truncated/out-of-range one
 * are not read; integer types (SHORT, LONG, SBYTE, SSHORT, SLONG, IFD, LONG8) use their
 * first value; FLOAT/DOUBLE/RATIONAL/SRATIONAL count when integral (6.0, 12/2);
 * BYTE/ASCII/UNDEFINED values are present but never match.
 * Returns 1..8, EXIF_ORIENTATION_OTHER or EXIF_ORIENTATION_ABSENT. */
int exif_find_orientation(const uint8_t *data, size_t len);

/* Convenience: exif_find_orientation() mapped to 1..8 (1 when absent or invalid). */
int exif_orientation(const uint8_t *data, size_t len);

/* XMP fallback used by Pillow when EXIF has no Orientation tag: the first match of
 * `tiff:Orientation="D` or `tiff:Orientation>D` (D one ASCII digit) in an XMP packet.
 * Returns 0..9 (the digit) or EXIF_ORIENTATION_ABSENT. */
int xmp_find_orientation(const uint8_t *data, size_t len);

/* Combines the two lookups like Pillow's getexif(): the EXIF value when the tag exists,
 * otherwise the XMP digit; the result is 1..8 (1 for anything else). Pass
 * EXIF_ORIENTATION_ABSENT for a source that is missing. */
int orientation_resolve(int exif_value, int xmp_value);

#endif
