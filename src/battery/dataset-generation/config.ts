/** The block `battery.dataset_generation` is defined with the study's other blocks (src/config/schema.ts). */
export {
  DatasetDomainName as DomainName,
  type DatasetGenerationConfig,
  DatasetGenerationSchema,
  type DomainSpec,
  DomainSpecSchema,
  PairedDomainSchema,
  SingleDomainSchema,
} from "../../config/schema.ts";
