/**
 * Service-provider interfaces: builder factories that {@code builder()} of the chat models looks up with
 * {@link java.util.ServiceLoader}, as LangChain4j's own integrations do.
 */
package io.github.starattention.langchain4j.spi;
