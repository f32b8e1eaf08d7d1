package io.github.starattention.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelDownloadsTest {

    @Test
    void usesJlamasFolderLayoutAndSkipsTheNetworkWhenFinished(@TempDir Path cache) throws Exception {
        assertThat(ModelDownloads.folder(cache, "acme/tiny-llama")).isEqualTo(cache.resolve("acme_tiny-llama"));
        assertThat(ModelDownloads.folder(cache, "tiny-llama")).isEqualTo(cache.resolve("tiny-llama"));
        assertThat(ModelDownloads.isCached(cache, "acme/tiny-llama")).isFalse();
        Path dir = Files.createDirectories(cache.resolve("acme_tiny-llama"));
        Files.createFile(dir.resolve(".finished"));
        assertThat(ModelDownloads.resolve(cache, "acme/tiny-llama", null)).isEqualTo(dir);
    }

    @Test
    void rejectsMalformedNames(@TempDir Path cache) {
        assertThatThrownBy(() -> ModelDownloads.folder(cache, "a/b/c")).hasMessageContaining("owner/name");
        assertThatThrownBy(() -> ModelDownloads.folder(cache, " ")).hasMessageContaining("owner/name");
    }

    @Test
    void buildsAChatModelFromACachedHuggingFaceName(@TempDir Path cache) throws Exception {
        Path dir = Files.createDirectories(cache.resolve("starattention_tiny-ruler-llama"));
        try (var files = Files.list(TestModels.modelDir())) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        Files.createFile(dir.resolve(".finished"));
        try (var model = StarAttentionChatModel.builder()
                .modelName("starattention/tiny-ruler-llama")
                .modelCachePath(cache)
                .build()) {
            assertThat(model.modelName()).isEqualTo("starattention/tiny-ruler-llama");
            assertThat(model.engine().model().directory()).isEqualTo(dir);
        }
    }
}
