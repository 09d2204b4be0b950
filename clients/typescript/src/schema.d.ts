// Generated from tests/contracts/gateway.openapi.json by scripts/generate.mjs: do not edit.
// `make typescript-client` regenerates it; CI fails if it differs from the document.

export interface paths {
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get Liveness */
        get: operations["getLiveness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get Readiness */
        get: operations["getReadiness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/analyses": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List Analyses */
        get: operations["listAnalyses"];
        put?: never;
        /** Create Analysis */
        post: operations["createAnalysis"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/analyses/{analysis_id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get Analysis */
        get: operations["getAnalysis"];
        put?: never;
        post?: never;
        /** Delete Analysis */
        delete: operations["deleteAnalysis"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/analyses/{analysis_id}/heatmap": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The analysis's heatmap bytes */
        get: operations["getAnalysisHeatmap"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        /** The analysis's heatmap bytes (headers only) */
        head: operations["headAnalysisHeatmap"];
        patch?: never;
        trace?: never;
    };
    "/v1/analyses/{analysis_id}/image": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The analysis's image bytes */
        get: operations["getAnalysisImage"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        /** The analysis's image bytes (headers only) */
        head: operations["headAnalysisImage"];
        patch?: never;
        trace?: never;
    };
    "/v1/analyses/{analysis_id}/mask": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The analysis's mask bytes */
        get: operations["getAnalysisMask"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        /** The analysis's mask bytes (headers only) */
        head: operations["headAnalysisMask"];
        patch?: never;
        trace?: never;
    };
    "/v1/analyses/{analysis_id}/roi": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The analysis's roi bytes */
        get: operations["getAnalysisRoi"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        /** The analysis's roi bytes (headers only) */
        head: operations["headAnalysisRoi"];
        patch?: never;
        trace?: never;
    };
    "/v1/models": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List Models */
        get: operations["listModels"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * Analysis
         * @example {
         *       "caveats": [],
         *       "confidence": 0.91,
         *       "created_at": "2026-11-26T15:30:00.123456Z",
         *       "decision_threshold": 0.3587,
         *       "dicom": {
         *         "frame": 0,
         *         "frames": 1,
         *         "manufacturer": "ACME Ultrasound",
         *         "modality": "US",
         *         "photometric_interpretation": "RGB",
         *         "pixel_spacing_mm": [
         *           0.07,
         *           0.07
         *         ]
         *       },
         *       "id": "5f0c6c1e0b6e4a57a1d8a5d8c1e2f3a4",
         *       "image": {
         *         "content_type": "image/png",
         *         "format": "png",
         *         "height": 471,
         *         "sha256": "c0ff000000000000000000000000000000000000000000000000000000000000",
         *         "size": 183212,
         *         "url": "/v1/analyses/5f0c6c1e0b6e4a57a1d8a5d8c1e2f3a4/image",
         *         "width": 562
         *       },
         *       "label": "benign",
         *       "modality": "ultrasound",
         *       "models": {
         *         "classifier": {
         *           "name": "branet-resnet18-ultrasound",
         *           "sha256": "40ed000000000000000000000000000000000000000000000000000000000000",
         *           "version": "1.2.0"
         *         },
         *         "segmenter": {
         *           "name": "branet-lesion-segmenter",
         *           "sha256": "a1b2000000000000000000000000000000000000000000000000000000000000",
         *           "version": "0.1.0"
         *         }
         *       },
         *       "owner": "local",
         *       "probabilities": {
         *         "benign": 0.91,
         *         "malignant": 0.09
         *       },
         *       "roi": {
         *         "area": 21480,
         *         "bbox": {
         *           "x0": 120,
         *           "x1": 310,
         *           "y0": 88,
         *           "y1": 240
         *         },
         *         "crop": {
         *           "content_type": "image/png",
         *           "sha256": "3e7a000000000000000000000000000000000000000000000000000000000000",
         *           "size": 48210,
         *           "url": "/v1/analyses/5f0c6c1e0b6e4a57a1d8a5d8c1e2f3a4/roi"
         *         },
         *         "lesion_found": true,
         *         "mask": {
         *           "content_type": "image/png",
         *           "sha256": "9b1c000000000000000000000000000000000000000000000000000000000000",
         *           "size": 1432,
         *           "url": "/v1/analyses/5f0c6c1e0b6e4a57a1d8a5d8c1e2f3a4/mask"
         *         },
         *         "score": 0.93,
         *         "size": {
         *           "area_mm2": 105.25,
         *           "area_px": 21480,
         *           "height_mm": 10.64,
         *           "height_px": 152,
         *           "measured_on": "mask",
         *           "width_mm": 13.3,
         *           "width_px": 190
         *         }
         *       },
         *       "status": "completed",
         *       "timings": {
         *         "classify_ms": 27.4,
         *         "segment_ms": 85.2,
         *         "store_ms": 2.3,
         *         "total_ms": 130,
         *         "validate_ms": 9.1
         *       }
         *     }
         */
        Analysis: {
            /**
             * Caveats
             * @description why to trust this result less than it looks; [] if none
             */
            caveats: components["schemas"]["Caveat"][];
            /**
             * Confidence
             * @description the probability of the label
             */
            confidence: number;
            /**
             * Created At
             * Format: date-time
             */
            created_at: string;
            /**
             * Decision Threshold
             * @description the label is malignant when P(malignant) is at least this: the model's operating point, which weighs both classes equally; below 0.5 where malignant lesions are the rarer class in the training data
             * @default 0.5
             */
            decision_threshold: number;
            /** @description for a DICOM upload: the image is its rendered frame (PNG) */
            dicom: components["schemas"]["DicomInfo"] | null;
            /** @description Grad-CAM of the decision over the classified image */
            heatmap: components["schemas"]["StoredBlob"] | null;
            /** Id */
            id: string;
            image: components["schemas"]["StoredImage"];
            label: components["schemas"]["Label"];
            modality: components["schemas"]["Modality"];
            models: components["schemas"]["StageModels"];
            /** Owner */
            owner: string;
            probabilities: components["schemas"]["Probabilities"];
            roi: components["schemas"]["RegionOfInterest"] | null;
            /**
             * Status
             * @default completed
             * @constant
             */
            status: "completed";
            timings: components["schemas"]["Timings"];
        };
        /** AnalysisPage */
        AnalysisPage: {
            /** Items */
            items: components["schemas"]["Analysis"][];
            /**
             * Next Cursor
             * @description pass as `cursor` for the next page; null on the last page
             */
            next_cursor: string | null;
        };
        /** Body_createAnalysis */
        Body_createAnalysis: {
            /**
             * Box
             * @description x0,y0,x1,y1 around the lesion, in image pixels; implies ROI
             * @example 120,80,310,260
             */
            box?: string | null;
            /**
             * Explain
             * @description store a Grad-CAM heatmap of the decision (`/heatmap`)
             * @default false
             */
            explain?: boolean;
            /**
             * Extract Roi
             * @description extract the lesion with SAM first
             * @default false
             */
            extract_roi?: boolean;
            /**
             * File
             * @description JPEG, PNG or DICOM Part 10 (its rendered frame is kept, never the file), at most 10 MB
             */
            file: Blob;
            /**
             * Frame
             * @description which frame of a multi-frame DICOM file
             * @default 0
             */
            frame?: number;
            modality: components["schemas"]["Modality"];
            /**
             * Pixel Spacing
             * @description row_mm,column_mm per pixel, to measure the lesion in mm (a DICOM file's own PixelSpacing is used without it)
             * @example 0.07,0.07
             */
            pixel_spacing?: string | null;
            /**
             * Points
             * @description x,y,label;... points on (1) or off (0) the lesion; implies ROI
             * @example 200,170,1;40,30,0
             */
            points?: string | null;
        };
        /**
         * BoundingBox
         * @description Pixel box in the uploaded image's coordinates; x1 and y1 are exclusive.
         */
        BoundingBox: {
            /** X0 */
            x0: number;
            /** X1 */
            x1: number;
            /** Y0 */
            y0: number;
            /** Y1 */
            y1: number;
        };
        /**
         * Caveat
         * @description Why a result deserves less trust than its confidence suggests; `code` is stable.
         */
        Caveat: {
            /**
             * Code
             * @description model_at_chance: the model measured no better than chance; no_lesion_crop: the image was classified as uploaded, not a lesion crop; segmenter_unavailable: the lesion was classified on the caller's box as drawn
             * @enum {string}
             */
            code: "model_at_chance" | "no_lesion_crop" | "segmenter_unavailable";
            /** Detail */
            detail: string;
        };
        /** CheckResult */
        CheckResult: {
            /**
             * Detail
             * @default
             */
            detail: string;
            /** Ok */
            ok: boolean;
        };
        /**
         * DicomInfo
         * @description What a DICOM upload said that identifies no one; the file itself is not kept.
         */
        DicomInfo: {
            /**
             * Frame
             * @description the frame analysed, from 0
             * @default 0
             */
            frame: number;
            /**
             * Frames
             * @default 1
             */
            frames: number;
            /** Manufacturer */
            manufacturer: string | null;
            /** Modality */
            modality: string | null;
            /** Photometric Interpretation */
            photometric_interpretation: string | null;
            /**
             * Pixel Spacing Mm
             * @description [row, column] spacing: PixelSpacing or ImagerPixelSpacing
             */
            pixel_spacing_mm: number[] | null;
        };
        /**
         * Label
         * @enum {string}
         */
        Label: "benign" | "malignant";
        /**
         * LesionSize
         * @description The lesion's extent: in pixels always, in millimetres where a pixel spacing is known.
         */
        LesionSize: {
            /** Area Mm2 */
            area_mm2: number | null;
            /** Area Px */
            area_px: number;
            /** Height Mm */
            height_mm: number | null;
            /** Height Px */
            height_px: number;
            /**
             * Measured On
             * @description mask: the segmenter's outline; box: the caller's box (its inscribed ellipse for the area)
             * @enum {string}
             */
            measured_on: "mask" | "box";
            /** Width Mm */
            width_mm: number | null;
            /** Width Px */
            width_px: number;
        };
        /** Liveness */
        Liveness: {
            /** Service */
            service: string;
            /**
             * Status
             * @default alive
             * @constant
             */
            status: "alive";
            /** Version */
            version: string;
        };
        /**
         * Modality
         * @enum {string}
         */
        Modality: "ultrasound" | "mammography";
        /**
         * ModelInfo
         * @description A model in service, as its card describes it.
         */
        ModelInfo: {
            /** Architecture */
            architecture: string;
            /**
             * Caveats
             * @description on every answer it gives
             */
            caveats: components["schemas"]["Caveat"][];
            /**
             * Decision Threshold
             * @description a classifier's: the label is malignant from this P(malignant)
             */
            decision_threshold: number | null;
            /**
             * Description
             * @default
             */
            description: string;
            /** Metrics */
            metrics: {
                [key: string]: number;
            };
            modality: components["schemas"]["Modality"] | null;
            /** Name */
            name: string;
            /**
             * Runtime
             * @description how it runs here, e.g. 'int8, ONNX Runtime'
             * @default
             */
            runtime: string;
            /** Sha256 */
            sha256: string;
            /**
             * Task
             * @enum {string}
             */
            task: "classification" | "segmentation";
            /** Version */
            version: string;
        };
        /** ModelRef */
        ModelRef: {
            /** Name */
            name: string;
            /**
             * Sha256
             * @description of the weights file
             */
            sha256: string | null;
            /** Version */
            version: string;
        };
        /** ModelsResponse */
        ModelsResponse: {
            /** Models */
            models: components["schemas"]["ModelInfo"][];
            /** Unavailable */
            unavailable: components["schemas"]["Unavailable"][];
        };
        /**
         * Point
         * @description A point prompt in image pixels: label 1 marks the lesion, 0 the background.
         */
        Point: {
            /**
             * Label
             * @default 1
             * @enum {integer}
             */
            label: 0 | 1;
            /** X */
            x: number;
            /** Y */
            y: number;
        };
        /** Probabilities */
        Probabilities: {
            /** Benign */
            benign: number;
            /** Malignant */
            malignant: number;
        };
        /**
         * Problem
         * @description RFC 9457 problem details, with BraNet's stable `code`.
         * @example {
         *       "code": "invalid_image",
         *       "detail": "the image is truncated or corrupt",
         *       "instance": "/v1/analyses",
         *       "request_id": "3f2c5b0e9a7d4c1b8e6f0a2d4c6e8b10",
         *       "status": 422,
         *       "title": "Invalid image",
         *       "type": "urn:branet:problem:invalid_image"
         *     }
         */
        Problem: {
            /** Code */
            code: string;
            /** Detail */
            detail: string;
            /**
             * Instance
             * @default null
             */
            instance?: string | null;
            /**
             * Request Id
             * @default null
             */
            request_id?: string | null;
            /** Status */
            status: number;
            /** Title */
            title: string;
            /** Type */
            type: string;
        };
        /**
         * Prompt
         * @description What the caller marked on the image for SAM: a box around the lesion and/or points.
         */
        Prompt: {
            box: components["schemas"]["BoundingBox"] | null;
            /** Points */
            points: components["schemas"]["Point"][];
        };
        /** Readiness */
        Readiness: {
            /** Checks */
            checks: {
                [key: string]: components["schemas"]["CheckResult"];
            };
            /**
             * Status
             * @enum {string}
             */
            status: "ready" | "not_ready";
        };
        /** RegionOfInterest */
        RegionOfInterest: {
            /** Area */
            area: number | null;
            /** @description the mask's box; with no lesion found inside a caller's box, that box */
            bbox: components["schemas"]["BoundingBox"] | null;
            /** @description the classified crop of bbox */
            crop: components["schemas"]["StoredBlob"] | null;
            /** Lesion Found */
            lesion_found: boolean;
            mask: components["schemas"]["StoredBlob"] | null;
            /** @description what the caller marked, if anything */
            prompt: components["schemas"]["Prompt"] | null;
            /**
             * Score
             * @description SAM's predicted IoU
             */
            score: number | null;
            size: components["schemas"]["LesionSize"] | null;
        };
        /** StageModels */
        StageModels: {
            classifier: components["schemas"]["ModelRef"];
            segmenter: components["schemas"]["ModelRef"] | null;
        };
        /**
         * StoredBlob
         * @description A blob of an analysis; its bytes are served at `url`.
         */
        StoredBlob: {
            /** Content Type */
            content_type: string;
            /** Sha256 */
            sha256: string;
            /** Size */
            size: number;
            /** Url */
            url: string;
        };
        /** StoredImage */
        StoredImage: {
            /** Content Type */
            content_type: string;
            /**
             * Format
             * @enum {string}
             */
            format: "png" | "jpeg";
            /** Height */
            height: number;
            /** Sha256 */
            sha256: string;
            /** Size */
            size: number;
            /** Url */
            url: string;
            /** Width */
            width: number;
        };
        /**
         * Timings
         * @description Milliseconds spent per stage of the request.
         */
        Timings: {
            /** Classify Ms */
            classify_ms: number;
            /** Segment Ms */
            segment_ms: number | null;
            /** Store Ms */
            store_ms: number;
            /** Total Ms */
            total_ms: number;
            /** Validate Ms */
            validate_ms: number;
        };
        /**
         * Unavailable
         * @description A model that is configured but not loaded, and why.
         */
        Unavailable: {
            /** Name */
            name: string;
            /** Reason */
            reason: string;
            /** Service */
            service: string;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    getLiveness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Liveness"];
                };
            };
        };
    };
    getReadiness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
            /** @description Service Unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
        };
    };
    listAnalyses: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string | null;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AnalysisPage"];
                };
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    createAnalysis: {
        parameters: {
            query?: never;
            header?: {
                /** @description a unique key per analysis (e.g. a UUID): a retry with the same key and request returns the analysis the first made, never a second (24 h) */
                "Idempotency-Key"?: string | null;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "multipart/form-data": components["schemas"]["Body_createAnalysis"];
            };
        };
        responses: {
            /** @description Successful Response */
            201: {
                headers: {
                    /** @description `true` when an earlier request with this Idempotency-Key made the analysis */
                    "Idempotent-Replayed"?: "true";
                    /** @description the new analysis's URL */
                    Location?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Analysis"];
                };
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `payload_too_large` */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "payload_too_large";
                    };
                };
            };
            /** @description `unsupported_media_type` */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unsupported_media_type";
                    };
                };
            };
            /** @description `invalid_image`, `invalid_parameter`, `idempotency_key_reused` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_image" | "invalid_parameter" | "idempotency_key_reused";
                    };
                };
            };
            /** @description `rate_limited` */
            429: {
                headers: {
                    /** @description seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "rate_limited";
                    };
                };
            };
            /** @description `model_unavailable`, `overloaded` */
            503: {
                headers: {
                    /** @description seconds to wait before trying again */
                    "Retry-After"?: number;
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "model_unavailable" | "overloaded";
                    };
                };
            };
        };
    };
    getAnalysis: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                analysis_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Analysis"];
                };
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `not_found` */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "not_found";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    deleteAnalysis: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                analysis_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `not_found` */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "not_found";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    getAnalysisHeatmap: {
        parameters: {
            query?: never;
            header?: {
                /** @description an ETag from an earlier answer: 304 if unchanged */
                "if-none-match"?: string | null;
            };
            path: {
                analysis_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the heatmap's bytes */
            200: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content: {
                    "image/png": Blob;
                };
            };
            /** @description not modified: you hold these bytes already */
            304: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `not_found` */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "not_found";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    headAnalysisHeatmap: {
        parameters: {
            query?: never;
            header?: {
                /** @description an ETag from an earlier answer: 304 if unchanged */
                "if-none-match"?: string | null;
            };
            path: {
                analysis_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the heatmap's bytes */
            200: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content: {
                    "image/png": Blob;
                };
            };
            /** @description not modified: you hold these bytes already */
            304: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `not_found` */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "not_found";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    getAnalysisImage: {
        parameters: {
            query?: never;
            header?: {
                /** @description an ETag from an earlier answer: 304 if unchanged */
                "if-none-match"?: string | null;
            };
            path: {
                analysis_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the image's bytes */
            200: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content: {
                    "image/jpeg": Blob;
                    "image/png": Blob;
                };
            };
            /** @description not modified: you hold these bytes already */
            304: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `not_found` */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "not_found";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    headAnalysisImage: {
        parameters: {
            query?: never;
            header?: {
                /** @description an ETag from an earlier answer: 304 if unchanged */
                "if-none-match"?: string | null;
            };
            path: {
                analysis_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the image's bytes */
            200: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content: {
                    "image/jpeg": Blob;
                    "image/png": Blob;
                };
            };
            /** @description not modified: you hold these bytes already */
            304: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `not_found` */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "not_found";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    getAnalysisMask: {
        parameters: {
            query?: never;
            header?: {
                /** @description an ETag from an earlier answer: 304 if unchanged */
                "if-none-match"?: string | null;
            };
            path: {
                analysis_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the mask's bytes */
            200: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content: {
                    "image/png": Blob;
                };
            };
            /** @description not modified: you hold these bytes already */
            304: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `not_found` */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "not_found";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    headAnalysisMask: {
        parameters: {
            query?: never;
            header?: {
                /** @description an ETag from an earlier answer: 304 if unchanged */
                "if-none-match"?: string | null;
            };
            path: {
                analysis_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the mask's bytes */
            200: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content: {
                    "image/png": Blob;
                };
            };
            /** @description not modified: you hold these bytes already */
            304: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `not_found` */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "not_found";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    getAnalysisRoi: {
        parameters: {
            query?: never;
            header?: {
                /** @description an ETag from an earlier answer: 304 if unchanged */
                "if-none-match"?: string | null;
            };
            path: {
                analysis_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the roi's bytes */
            200: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content: {
                    "image/png": Blob;
                };
            };
            /** @description not modified: you hold these bytes already */
            304: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `not_found` */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "not_found";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    headAnalysisRoi: {
        parameters: {
            query?: never;
            header?: {
                /** @description an ETag from an earlier answer: 304 if unchanged */
                "if-none-match"?: string | null;
            };
            path: {
                analysis_id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description the roi's bytes */
            200: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content: {
                    "image/png": Blob;
                };
            };
            /** @description not modified: you hold these bytes already */
            304: {
                headers: {
                    "Cache-Control"?: string;
                    "Content-Length"?: number;
                    /** @description the blob's SHA-256, quoted */
                    ETag?: string;
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `unauthenticated` */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "unauthenticated";
                    };
                };
            };
            /** @description `not_found` */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "not_found";
                    };
                };
            };
            /** @description `invalid_parameter` */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"] & {
                        /** @enum {string} */
                        code: "invalid_parameter";
                    };
                };
            };
        };
    };
    listModels: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Successful Response */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ModelsResponse"];
                };
            };
        };
    };
}
